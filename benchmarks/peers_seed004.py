"""Seed 004's NumPy network (numerical tours "Neural Networks"), copied as the W4 peer.

The functions below are the seed's own, unchanged, with one fix: the seed fills the data
set with ``I = np.arange(n0*(j-1), n0*j)``, which for j = 0 gives negative indices (class 0
lands in the last block of columns); here ``I = np.arange(n0*j, n0*(j+1))``. The seed draws
its noise from the global ``np.random``; ``make_data`` takes a seed so that the draw is fixed.

Layout is the seed's: samples are COLUMNS. x is (p, n), the one-hot class matrix Y is (k, n),
A[r] is (d_{r+1}, d_r), b[r] is (d_{r+1}, 1). As in the seed, ``BackwardNN`` reads the
module globals ``Y`` and ``n``; ``set_targets`` sets them.

``gradient_descent`` is the seed's Exercise 1 (the numerical tours solution loop): at every
iteration forward, record the loss, backward, then A -= tau*gA, b -= tau*gb.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)

import numpy as np  # noqa: E402

# globals read by BackwardNN, as in the seed
Y = None
n = None


def make_data(n0=100, p=2, k=3, noise=0.2, seed=0):
    """The seed's spiral data set (indexing bug fixed, noise from RandomState(seed)).

    Returns x (p, n), y (1, n) float class labels 0..k-1, Y (k, n) one-hot.
    """
    rs = np.random.RandomState(seed)
    n_ = n0 * k
    x = np.zeros((p, n_))
    y = np.zeros((1, n_))
    for j in np.arange(0, k):
        I = np.arange(n0 * j, n0 * (j + 1))  # the seed had np.arange(n0*(j-1), n0*j)  # noqa: E741
        r = np.linspace(0.0, 1, n0)  # radius
        t = np.linspace(j * 4, (j + 1) * 4, n0) + rs.randn(1, n0) * noise  # angle
        x[0, I] = r * np.sin(t)
        x[1, I] = r * np.cos(t)
        y[0, I] = j
    U = np.tile(MakeCol(np.arange(1, k + 1)), (1, n_))
    Y_ = np.double(U == np.tile(y + 1, (k, 1)))
    return x, y, Y_


def set_targets(Y_):
    """Set the globals ``Y`` (k, n) and ``n`` that the seed's BackwardNN reads."""
    global Y, n
    Y = Y_
    n = Y_.shape[1]


# ---- the seed's helpers, verbatim -------------------------------------------------------

# convert to a column vector
def MakeCol(y):
    return y.reshape(-1, 1)


# convert to a row vector
def MakeRow(y):
    return y.reshape(1, -1)


# find non zero/true elements
def find(x):
    return np.nonzero(x)[0]


def dotp(x, y):
    return sum(x.flatten() * y.flatten())


def max2(S):
    return np.tile(S.max(axis=1, keepdims=1), (1, S.shape[1]))


def LSE0(S):
    return np.log(np.exp(S).sum(axis=1, keepdims=1))


def LSE(S):
    return LSE0(S - max2(S)) + S.max(axis=1, keepdims=1)


def SM0(S):
    return np.exp(S) / np.tile(np.exp(S).sum(axis=1, keepdims=1), (1, S.shape[1]))


def SM(S):
    return SM0(S - max2(S))


def lossF(z, y):
    return LSE(z.transpose()).sum() - dotp(z, y)


def lossG(z, y):
    return SM(z.transpose()).transpose() - y


def rhoF(u):
    return np.arctan(u)


def rhoG(u):
    return 1 / (1 + u**2)


def ForwardNN(A, b, Z, R):
    X = []
    X.append(Z)
    for r in np.arange(0, R):
        X.append(rhoF(np.dot(A[r], X[r]) + np.tile(b[r], [1, Z.shape[1]])))
    return X


def BackwardNN(A, b, X, R):
    gA = []  # gradient with respect to A
    gb = []  # gradient with respect to b
    for r in np.arange(0, R):  # noqa: B007 - the seed's loop, verbatim
        gA.append([])
        gb.append([])
    gx = lossG(X[R], Y)  # initialize the gradient
    for r in np.arange(R - 1, -1, -1):
        M = rhoG(A[r].dot(X[r]) + np.tile(b[r], [1, n])) * gx
        # nabla_X[r]
        gx = A[r].transpose().dot(M)
        # nabla_A[r]
        gA[r] = M.dot(X[r].transpose())
        # nabla_b[r]
        gb[r] = MakeCol(M.sum(axis=1))
    return [gA, gb]


# ---- Exercise 1: gradient descent --------------------------------------------------------

def gradient_descent(A, b, x, Y_, tau=0.01, niter=10_000, record_loss=True):
    """The seed's gradient descent on the summed loss, from copies of A, b.

    Returns (A, b, L) with L[it] = lossF before step it (as the seed records it). With
    ``record_loss=False`` only the last iteration's loss is computed (the seed's lossF
    sums with Python's builtin ``sum`` and costs about as much as a whole step).
    """
    set_targets(Y_)
    R = len(A)
    A = [a.copy() for a in A]
    b = [c.copy() for c in b]
    L = np.zeros((niter, 1))
    for it in np.arange(0, niter):
        X = ForwardNN(A, b, x, R)
        if record_loss or it == niter - 1:
            L[it] = lossF(X[R], Y_)
        [gA, gb] = BackwardNN(A, b, X, R)
        for r in np.arange(0, R):
            A[r] = A[r] - tau * gA[r]
            b[r] = b[r] - tau * gb[r]
    return A, b, L
