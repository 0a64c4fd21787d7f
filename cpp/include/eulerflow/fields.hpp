// Vector fields dy/dt = f(t, y) evaluated on a batch of states (rows of y).
// Native fields run with no Python call; a network is a field f(y).
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "eulerflow/field_kernels.hpp"
#include "eulerflow/network.hpp"

namespace eulerflow {

class Field {
public:
    virtual ~Field() = default;
    // dy = f(t, y) for `batch` states of dimension dim(), stored as rows.
    virtual void eval(double t, const double* y, double* dy, std::size_t batch) = 0;
    virtual std::size_t dim() const = 0;
    // The Jacobian df/dy of each of the `batch` states: J holds batch blocks of
    // dim() x dim() values (row-major, J[r d^2 + i d + k] = df_i/dy_k of row r).
    // Only fields with has_jacobian() implement it; the others are differentiated
    // by finite differences where a Jacobian is needed (radau5).
    virtual bool has_jacobian() const { return false; }
    virtual void jacobian(double t, const double* y, double* J, std::size_t batch);
    // Called around a whole integration: a field built on shared state (a network)
    // holds it for the integration's duration, not evaluation by evaluation.
    virtual void begin() {}
    virtual void end() {}
};

// begin() now, end() when the scope closes.
class FieldSession {
public:
    explicit FieldSession(Field& f) : f_(f) { f_.begin(); }
    ~FieldSession() { f_.end(); }
    FieldSession(const FieldSession&) = delete;
    FieldSession& operator=(const FieldSession&) = delete;

private:
    Field& f_;
};

// dy/dt = A y + b.
class LinearField : public Field {
public:
    LinearField(std::vector<double> A, std::vector<double> b, std::size_t d);
    void eval(double t, const double* y, double* dy, std::size_t batch) override;
    bool has_jacobian() const override { return true; }
    void jacobian(double t, const double* y, double* J, std::size_t batch) override;
    std::size_t dim() const override { return d_; }
    const std::vector<double>& A() const { return A_; }
    const std::vector<double>& b() const { return b_; }  // empty: no bias

private:
    std::vector<double> A_, b_;
    std::size_t d_;
};

// Lorenz (1963): x' = sigma (y - x), y' = x (rho - z) - y, z' = x y - beta z.
class LorenzField : public Field {
public:
    LorenzField(double sigma, double rho, double beta) : fn_{sigma, rho, beta} {}
    void eval(double t, const double* y, double* dy, std::size_t batch) override;
    bool has_jacobian() const override { return true; }
    void jacobian(double t, const double* y, double* J, std::size_t batch) override;
    std::size_t dim() const override { return 3; }
    const LorenzFn& fn() const { return fn_; }

private:
    LorenzFn fn_;
};

// Seed 000's projectile as a first-order system on (x, y, z, vx, vy, vz):
// positions move with the velocities, velocities with constant accelerations.
class ProjectileField : public Field {
public:
    ProjectileField(double ax, double ay, double az) : fn_{ax, ay, az} {}
    void eval(double t, const double* y, double* dy, std::size_t batch) override;
    bool has_jacobian() const override { return true; }
    void jacobian(double t, const double* y, double* J, std::size_t batch) override;
    std::size_t dim() const override { return 6; }
    const ProjectileFn& fn() const { return fn_; }

private:
    ProjectileFn fn_;
};

// Van der Pol: y0' = y1, y1' = mu (1 - y0^2) y1 - y0.
class VanDerPolField : public Field {
public:
    explicit VanDerPolField(double mu) : fn_{mu} {}
    void eval(double t, const double* y, double* dy, std::size_t batch) override;
    bool has_jacobian() const override { return true; }
    void jacobian(double t, const double* y, double* J, std::size_t batch) override;
    std::size_t dim() const override { return 2; }
    const VanDerPolFn& fn() const { return fn_; }

private:
    VanDerPolFn fn_;
};

// Arenstorf orbit of the restricted three-body problem on (x, y, vx, vy).
class ArenstorfField : public Field {
public:
    explicit ArenstorfField(double mu) : fn_{mu} {}
    void eval(double t, const double* y, double* dy, std::size_t batch) override;
    bool has_jacobian() const override { return true; }
    void jacobian(double t, const double* y, double* J, std::size_t batch) override;
    std::size_t dim() const override { return 4; }
    const ArenstorfFn& fn() const { return fn_; }

private:
    ArenstorfFn fn_;
};

// An eulerflow network used as an autonomous field f(y). With `guarded`, each
// evaluation takes the network's busy flag; a caller that already holds it
// (a Neural ODE's training loop) builds it unguarded.
class NetworkField : public Field {
public:
    NetworkField(Net<double>& net, std::size_t d, bool guarded = true) : net_(net), d_(d), guarded_(guarded) {}
    void eval(double t, const double* y, double* dy, std::size_t batch) override;
    std::size_t dim() const override { return d_; }
    // a guarded field takes the network's busy flag for the whole integration:
    // a fit in another thread is refused meanwhile (or refuses this one)
    void begin() override;
    void end() override;

private:
    void eval_unguarded(const double* y, double* dy, std::size_t batch);
    Net<double>& net_;
    std::size_t d_;
    bool guarded_;
    std::optional<Guard<double>> held_;  // the network's busy flag, between begin and end
};

}  // namespace eulerflow
