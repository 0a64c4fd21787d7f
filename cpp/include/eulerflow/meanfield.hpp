// Mean-field two-layer ReLU networks (seed 003; Chizat & Bach 2018): m
// particles (a_j, w_j, b_j) in dimension d, output
//     f(x) = (1/m) sum_j a_j relu(w_j . x + b_j),
// trained by minibatch SGD on the loss mean_i (f(x_i) - y_i)^2 / 2 with the
// exact gradient (the 1/m included), as the seed writes it (relu'(0) = 1).
// Particles are stored feature-major (a, b and one row of w per dimension, each
// of length m) so that every pass over the particles is a vectorized loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eulerflow/rng.hpp"

namespace eulerflow {

struct MeanField {
    std::size_t m = 0, d = 0;
    std::vector<double> a, b;  // m each
    std::vector<double> w;     // d rows of m: w[k * m + j] is w_j[k]

    // from/to row-major w (m, d)
    void load(const double* a_in, const double* w_rows, const double* b_in, std::size_t m_, std::size_t d_);
    void store(double* a_out, double* w_rows, double* b_out) const;
    // the particles (a, w, b) as rows of d + 2 values
    void snapshot(double* out) const;
};

// Scratch for a batch of n samples (sized once per run).
struct MeanFieldWork {
    std::vector<double> z, coef, ga, gb, gw, resid;
    void reserve(std::size_t m, std::size_t d);
    // room for per-sample partial sums of a batch of n (before the loop)
    void reserve_samples(std::size_t n);
    double* scratch();  // z's storage aligned to 32 bytes
};

// f(x_i) for n row-major samples x (n, d).
void meanfield_forward(const MeanField& net, const double* x, std::size_t n, double* out, MeanFieldWork& w);

// One SGD step of rate lr on the batch (x (n, d), y (n)); returns the batch
// loss before the step.
double meanfield_step(MeanField& net, const double* x, const double* y, std::size_t n, double lr,
                      MeanFieldWork& w);

// Standard normal deviates: Box-Muller on the seeded generator's uniforms (per
// pair u1, drawn again while 0, then u2; an odd n drops the last sine), with
// log, sin and cos evaluated in vector lanes (box_muller). The same bits under
// every kernel variant.
void normal_fill(Rng& rng, double* out, std::size_t n);

// out[2p], out[2p + 1] = sqrt(-2 log u1[p]) (cos, sin)(2 pi u2[p]) for p < n,
// u1[p] in [2^-1022, 1] (normal) and u2[p] in [0, 1): within a few ulp of libm's log, cos and
// sin of the same doubles (2 pi u2 rounded to a double first).
void box_muller(const double* u1, const double* u2, std::size_t n, double* out);

struct MeanFieldRun {
    std::int64_t steps_done = 0;
    std::int64_t snapshots_done = 0;  // rows of snapshots / losses written
    bool diverged = false;
    std::int64_t bad_step = -1;
};

// The samples (steps, batch, d) and teacher labels (steps, batch) that
// meanfield_fit_teacher draws step by step from `rng`, all drawn at once.
struct TeacherStream {
    std::vector<double> x, y;
    void draw(const MeanField& teacher, std::int64_t steps, std::size_t batch, Rng& rng);
};

// Trains `student` on fresh Gaussian samples labelled by `teacher`: `steps`
// SGD steps of `batch` samples. Every `snapshot_every` steps (and at step 0)
// writes all particles to snapshots (k, m, d + 2) and the test loss on
// (x_test, y_test) to test_loss. snapshot_every = 0: only the start and end.
// With `stream` (TeacherStream::draw's samples and labels of every step, from
// the same teacher and a generator seeded alike) the steps read them instead
// of drawing: the same numbers, drawn once for several students. Each step
// makes one pass over the particles (its update fused with the next batch's
// forward pass) and gives the bits of meanfield_step; so does meanfield_fit's.
// With `inputs` (steps x batch rows of d values) the steps learn from those
// inputs instead of drawing them, labelled by the teacher step by step.
MeanFieldRun meanfield_fit_teacher(MeanField& student, const MeanField& teacher, std::int64_t steps,
                                   std::size_t batch, double lr, std::int64_t snapshot_every, Rng& rng,
                                   const double* x_test, const double* y_test, std::size_t n_test,
                                   double* snapshots, double* test_loss, const TeacherStream* stream = nullptr,
                                   const double* inputs = nullptr);

// Trains on a given data set (x (n, d), y (n)) for `epochs` passes of
// consecutive batches (in a seeded shuffled order when shuffle is set);
// snapshots and the training loss as above, counting steps.
MeanFieldRun meanfield_fit(MeanField& net, const double* x, const double* y, std::size_t n, double lr,
                           std::size_t batch, std::int64_t epochs, bool shuffle, Rng& rng,
                           std::int64_t snapshot_every, double* snapshots, double* loss_out);

// One member of a mean-field ensemble: its particles, teacher (fit_teacher
// only), rate, seed, held-out set (fit_teacher only) and its own room for
// snapshots and losses; `run` is filled by the call.
struct MeanFieldMember {
    MeanField net;
    const MeanField* teacher = nullptr;
    double lr = 0.0;
    std::uint64_t seed = 0;  // of its sample stream (fit_teacher) or shuffling (fit)
    const double* x_test = nullptr;
    const double* y_test = nullptr;
    std::size_t n_test = 0;
    double* snapshots = nullptr;
    double* loss = nullptr;
    MeanFieldRun run;
};

// Every member's meanfield_fit_teacher (shared steps, batch and snapshot_every)
// or meanfield_fit (shared data and schedule), members spread over n_threads
// threads, each whole on one thread: member i ends bit-identical to its
// separate run whatever the thread count. Members of more particles start first.
// Members of one teacher and seed learn from the same samples: fit_teacher
// draws them once for all of them (a TeacherStream) while the streams of the
// call fit in stream_bytes.
void meanfield_fit_teacher_members(std::vector<MeanFieldMember>& members, std::int64_t steps, std::size_t batch,
                                   std::int64_t snapshot_every, std::size_t n_threads,
                                   std::size_t stream_bytes = std::size_t(256) << 20);
void meanfield_fit_members(std::vector<MeanFieldMember>& members, const double* x, const double* y, std::size_t n,
                           std::size_t batch, std::int64_t epochs, bool shuffle, std::int64_t snapshot_every,
                           std::size_t n_threads);

}  // namespace eulerflow
