#include "eulerflow/tableau.hpp"

#include <cmath>
#include <map>
#include <stdexcept>
#include <utility>

namespace eulerflow {

void Tableau::validate() const {
    const double tol = 1e-14;
    auto fail = [this](const std::string& why) {
        throw std::invalid_argument("Butcher tableau '" + name + "': " + why);
    };
    if (stages == 0) fail("no stages");
    if (a.size() != stages * stages || b.size() != stages || c.size() != stages) fail("array sizes do not match the stage count");
    if (!b_err.empty() && b_err.size() != stages) fail("embedded weights have the wrong size");
    if (!b_err3.empty() && (b_err.empty() || b_err3.size() != stages)) {
        fail("the second embedded weights need the first and one weight per stage");
    }
    if (c[0] != 0.0) fail("c[0] must be 0 for an explicit method");
    for (std::size_t i = 0; i < stages; ++i) {
        double row = 0.0, size = 1.0;
        for (std::size_t j = 0; j < stages; ++j) {
            if (j >= i && A(i, j) != 0.0) fail("a must be strictly lower triangular (explicit method)");
            row += A(i, j);
            size += std::fabs(A(i, j));
        }
        // relative to the row's size: dopri8's rows hold entries near 40 that cancel to c
        if (std::fabs(row - c[i]) > tol * size) {
            fail("row " + std::to_string(i) + " of a sums to " + std::to_string(row) + ", not c = " +
                 std::to_string(c[i]));
        }
    }
    double sb = 0.0, se = 0.0, se3 = 0.0, size = 1.0;
    for (std::size_t j = 0; j < stages; ++j) {
        sb += b[j];
        size += std::fabs(b[j]);
        if (!b_err.empty()) se += b_err[j];
        if (!b_err3.empty()) se3 += b_err3[j];
    }
    if (std::fabs(sb - 1.0) > tol * size) fail("b sums to " + std::to_string(sb) + ", not 1");
    if (!b_err.empty() && std::fabs(se) > tol * size) fail("embedded weights do not sum to 1");
    if (!b_err3.empty() && std::fabs(se3) > tol * size) fail("second embedded weights do not sum to 1");
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
             bool fsal = false, Tableau::Dense dense = Tableau::Dense::Hermite) {
    Tableau t;
    t.name = name;
    t.stages = s;
    t.a = std::move(a);
    t.b = std::move(b);
    t.c = std::move(c);
    t.order = order;
    t.error_order = error_order;
    t.fsal = fsal;
    t.dense = dense;
    if (!b_hat.empty()) {
        t.b_err.resize(s);
        for (std::size_t j = 0; j < s; ++j) t.b_err[j] = t.b[j] - b_hat[j];
    }
    t.validate();
    return t;
}

// Dormand-Prince 8(5,3): the 12-stage pair of Hairer's DOP853 (Hairer, Norsett &
// Wanner, Solving ODEs I, II.5 and II.10; the constants of the published DOP853 code).
// A 13th stage with the row b, at c = 1, is f(t + h, y_new): DOP853 evaluates it after
// the step, and as our FSAL stage it becomes the next step's first (12 evaluations per
// step). The error is DOP853's combination of a 5th- and a 3rd-order estimate.
Tableau make_dopri8() {
    const std::size_t S = 13;
    const std::vector<double> c = {
        0.0,
        0.526001519587677318785587544488e-1,
        0.789002279381515978178381316732e-1,
        0.118350341907227396726757197510,
        0.281649658092772603273242802490,
        0.333333333333333333333333333333,
        0.25,
        0.307692307692307692307692307692,
        0.651282051282051282051282051282,
        0.6,
        0.857142857142857142857142857142,
        1.0,
        1.0,
    };
    std::vector<double> a(S * S, 0.0);
    auto row = [&a, S](std::size_t i, std::vector<std::pair<std::size_t, double>> entries) {
        for (const auto& e : entries) a[(i - 1) * S + (e.first - 1)] = e.second;  // 1-based, as printed
    };
    row(2, {{1, 5.26001519587677318785587544488e-2}});
    row(3, {{1, 1.97250569845378994544595329183e-2}, {2, 5.91751709536136983633785987549e-2}});
    row(4, {{1, 2.95875854768068491816892993775e-2}, {3, 8.87627564304205475450678981324e-2}});
    row(5, {{1, 2.41365134159266685502369798665e-1}, {3, -8.84549479328286085344864962717e-1},
            {4, 9.24834003261792003115737966543e-1}});
    row(6, {{1, 3.7037037037037037037037037037e-2}, {4, 1.70828608729473871279604482173e-1},
            {5, 1.25467687566822425016691814123e-1}});
    row(7, {{1, 3.7109375e-2}, {4, 1.70252211019544039314978060272e-1},
            {5, 6.02165389804559606850219397283e-2}, {6, -1.7578125e-2}});
    row(8, {{1, 3.70920001185047927108779319836e-2}, {4, 1.70383925712239993810214054705e-1},
            {5, 1.07262030446373284651809199168e-1}, {6, -1.53194377486244017527936158236e-2},
            {7, 8.27378916381402288758473766002e-3}});
    row(9, {{1, 6.24110958716075717114429577812e-1}, {4, -3.36089262944694129406857109825},
            {5, -8.68219346841726006818189891453e-1}, {6, 2.75920996994467083049415600797e1},
            {7, 2.01540675504778934086186788979e1}, {8, -4.34898841810699588477366255144e1}});
    row(10, {{1, 4.77662536438264365890433908527e-1}, {4, -2.48811461997166764192642586468},
             {5, -5.90290826836842996371446475743e-1}, {6, 2.12300514481811942347288949897e1},
             {7, 1.52792336328824235832596922938e1}, {8, -3.32882109689848629194453265587e1},
             {9, -2.03312017085086261358222928593e-2}});
    row(11, {{1, -9.3714243008598732571704021658e-1}, {4, 5.18637242884406370830023853209},
             {5, 1.09143734899672957818500254654}, {6, -8.14978701074692612513997267357},
             {7, -1.85200656599969598641566180701e1}, {8, 2.27394870993505042818970056734e1},
             {9, 2.49360555267965238987089396762}, {10, -3.0467644718982195003823669022}});
    row(12, {{1, 2.27331014751653820792359768449}, {4, -1.05344954667372501984066689879e1},
             {5, -2.00087205822486249909675718444}, {6, -1.79589318631187989172765950534e1},
             {7, 2.79488845294199600508499808837e1}, {8, -2.85899827713502369474065508674},
             {9, -8.87285693353062954433549289258}, {10, 1.23605671757943030647266201528e1},
             {11, 6.43392746015763530355970484046e-1}});
    std::vector<double> b(S, 0.0);
    b[0] = 5.42937341165687622380535766363e-2;
    b[5] = 4.45031289275240888144113950566;
    b[6] = 1.89151789931450038304281599044;
    b[7] = -5.8012039600105847814672114227;
    b[8] = 3.1116436695781989440891606237e-1;
    b[9] = -1.52160949662516078556178806805e-1;
    b[10] = 2.01365400804030348374776537501e-1;
    b[11] = 4.47106157277725905176885569043e-2;
    for (std::size_t j = 0; j < S; ++j) a[(S - 1) * S + j] = b[j];  // the FSAL stage
    // the 5th-order error weights (DOP853's er) and b minus the 3rd-order weights (bhh)
    std::vector<double> e5(S, 0.0), e3 = b;
    e5[0] = 0.1312004499419488073250102996e-1;
    e5[5] = -0.1225156446376204440720569753e1;
    e5[6] = -0.4957589496572501915214079952;
    e5[7] = 0.1664377182454986536961530415e1;
    e5[8] = -0.3503288487499736816886487290;
    e5[9] = 0.3341791187130174790297318841;
    e5[10] = 0.8192320648511571246570742613e-1;
    e5[11] = -0.2235530786388629525884427845e-1;
    e3[0] -= 0.244094488188976377952755905512;
    e3[8] -= 0.733846688281611857341361741547;
    e3[11] -= 0.220588235294117647058823529412e-1;
    Tableau t;
    t.name = "dopri8";
    t.stages = S;
    t.a = std::move(a);
    t.b = std::move(b);
    t.c = c;
    t.b_err = std::move(e5);
    t.b_err3 = std::move(e3);
    t.order = 8;
    t.error_order = 7;  // err5^2 / sqrt(err5^2 + 0.01 err3^2) ~ h^8
    t.fsal = true;
    t.dense = Tableau::Dense::Dop853;
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
                       4, true, Tableau::Dense::Shampine5);
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
                      true);
    m["dopri8"] = make_dopri8();
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
