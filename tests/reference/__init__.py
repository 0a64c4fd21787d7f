"""Plain NumPy reference implementations that the tests compare eulerflow against."""
