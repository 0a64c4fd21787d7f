#include "eulerflow/tableau.hpp"

#include <cmath>
#include <map>
#include <stdexcept>

namespace eulerflow {

void Tableau::validate() const {
    const double tol = 1e-14;
    auto fail = [this](const std::string& why) {
        throw std::invalid_argument("Butcher tableau '" + name + "': " + why);
    };
    if (stages == 0) fail("no stages");
    if (a.size() != stages * stages || b.size() != stages || c.size() != stages) fail("array sizes do not match the stage count");
    if (!b_err.empty() && b_err.size() != stages) fail("embedded weights have the wrong size");
    if (c[0] != 0.0) fail("c[0] must be 0 for an explicit method");
    for (std::size_t i = 0; i < stages; ++i) {
        double row = 0.0;
        for (std::size_t j = 0; j < stages; ++j) {
            if (j >= i && A(i, j) != 0.0) fail("a must be strictly lower triangular (explicit method)");
            row += A(i, j);
        }
        if (std::fabs(row - c[i]) > tol) {
            fail("row " + std::to_string(i) + " of a sums to " + std::to_string(row) + ", not c = " +
                 std::to_string(c[i]));
        }
    }
    double sb = 0.0, se = 0.0;
    for (std::size_t j = 0; j < stages; ++j) {
        sb += b[j];
        if (!b_err.empty()) se += b_err[j];
    }
    if (std::fabs(sb - 1.0) > tol) fail("b sums to " + std::to_string(sb) + ", not 1");
    if (!b_err.empty() && std::fabs(se) > tol) fail("embedded weights do not sum to 1");
    if (fsal) {
        if (c[stages - 1] != 1.0) fail("FSAL needs c = 1 in the last stage");
        for (std::size_t j = 0; j < stages; ++j) {
            if (A(stages - 1, j) != b[j]) fail("FSAL needs the last row of a equal to b");
        }
    }
}

namespace {

Tableau make(const std::string& name, std::size_t s, std::vector<double> a, std::vector<double> b,
             std::vector<double> c, int order, std::vector<double> b_hat = {}, int error_order = 0,
             bool fsal = false, bool shampine = false) {
    Tableau t;
    t.name = name;
    t.stages = s;
    t.a = std::move(a);
    t.b = std::move(b);
    t.c = std::move(c);
    t.order = order;
    t.error_order = error_order;
    t.fsal = fsal;
    t.shampine_dense = shampine;
    if (!b_hat.empty()) {
        t.b_err.resize(s);
        for (std::size_t j = 0; j < s; ++j) t.b_err[j] = t.b[j] - b_hat[j];
    }
    t.validate();
    return t;
}

std::map<std::string, Tableau> build_all() {
    std::map<std::string, Tableau> m;
    m["euler"] = make("euler", 1, {0.0}, {1.0}, {0.0}, 1);
    m["midpoint"] = make("midpoint", 2, {0.0, 0.0, 0.5, 0.0}, {0.0, 1.0}, {0.0, 0.5}, 2);
    m["heun"] = make("heun", 2, {0.0, 0.0, 1.0, 0.0}, {0.5, 0.5}, {0.0, 1.0}, 2);
    m["rk4"] = make("rk4", 4,
                    {0.0, 0.0, 0.0, 0.0,  //
                     0.5, 0.0, 0.0, 0.0,  //
                     0.0, 0.5, 0.0, 0.0,  //
                     0.0, 0.0, 1.0, 0.0},
                    {1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6}, {0.0, 0.5, 0.5, 1.0}, 4);
    m["rk38"] = make("rk38", 4,
                     {0.0, 0.0, 0.0, 0.0,         //
                      1.0 / 3, 0.0, 0.0, 0.0,     //
                      -1.0 / 3, 1.0, 0.0, 0.0,    //
                      1.0, -1.0, 1.0, 0.0},
                     {1.0 / 8, 3.0 / 8, 3.0 / 8, 1.0 / 8}, {0.0, 1.0 / 3, 2.0 / 3, 1.0}, 4);
    // Bogacki-Shampine 3(2), FSAL
    m["bosh3"] = make("bosh3", 4,
                      {0.0, 0.0, 0.0, 0.0,          //
                       0.5, 0.0, 0.0, 0.0,          //
                       0.0, 0.75, 0.0, 0.0,         //
                       2.0 / 9, 1.0 / 3, 4.0 / 9, 0.0},
                      {2.0 / 9, 1.0 / 3, 4.0 / 9, 0.0}, {0.0, 0.5, 0.75, 1.0}, 3,
                      {7.0 / 24, 1.0 / 4, 1.0 / 3, 1.0 / 8}, 2, true);
    // Dormand-Prince 5(4), FSAL, with Shampine's dense output
    const std::vector<double> b5 = {35.0 / 384, 0.0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0.0};
    std::vector<double> a7(49, 0.0);
    const double rows[6][6] = {
        {1.0 / 5, 0, 0, 0, 0, 0},
        {3.0 / 40, 9.0 / 40, 0, 0, 0, 0},
        {44.0 / 45, -56.0 / 15, 32.0 / 9, 0, 0, 0},
        {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729, 0, 0},
        {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656, 0},
        {35.0 / 384, 0.0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
    };
    for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j) a7[(i + 1) * 7 + j] = rows[i][j];
    m["dopri5"] = make("dopri5", 7, a7, b5, {0.0, 0.2, 0.3, 0.8, 8.0 / 9, 1.0, 1.0}, 5,
                       {5179.0 / 57600, 0.0, 7571.0 / 16695, 393.0 / 640, -92097.0 / 339200,
                        187.0 / 2100, 1.0 / 40},
                       4, true, true);
    // Tsitouras 5(4) (2011), FSAL; diffrax's recommended default. The constants are the
    // paper's (its c are rounded decimals; the rows of a sum to them to the last digit)
    const std::vector<double> bt5 = {0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742,
                                     -3.290069515436081, 2.324710524099774, 0.0};
    const std::vector<double> bt_err = {-0.00178001105222577714, -0.0008164344596567469, 0.007880878010261995,
                                        -0.1447110071732629, 0.5823571654525552, -0.45808210592918697,
                                        1.0 / 66.0};
    std::vector<double> at(49, 0.0);
    const double trows[6][6] = {
        {0.161, 0, 0, 0, 0, 0},
        {-0.008480655492356989, 0.335480655492357, 0, 0, 0, 0},
        {2.8971530571054935, -6.359448489975075, 4.3622954328695815, 0, 0, 0},
        {5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525, 0, 0},
        {5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383, 0},
        {0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774},
    };
    for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j) at[(i + 1) * 7 + j] = trows[i][j];
    std::vector<double> bt_hat(7);
    for (int j = 0; j < 7; ++j) bt_hat[j] = bt5[j] - bt_err[j];  // the embedded 4th-order weights
    m["tsit5"] = make("tsit5", 7, at, bt5, {0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0}, 5, bt_hat, 4,
                      true, false);
    return m;
}

const std::map<std::string, Tableau>& all() {
    static const std::map<std::string, Tableau> m = build_all();
    return m;
}

}  // namespace

const Tableau& tableau_by_name(const std::string& name) {
    const auto& m = all();
    auto it = m.find(name);
    if (it == m.end()) {
        std::string known;
        for (const auto& kv : m) known += (known.empty() ? "" : ", ") + kv.first;
        throw std::invalid_argument("unknown method '" + name + "'; known methods: " + known);
    }
    return it->second;
}

std::vector<std::string> tableau_names() {
    std::vector<std::string> out;
    for (const auto& kv : all()) out.push_back(kv.first);
    return out;
}

}  // namespace eulerflow
