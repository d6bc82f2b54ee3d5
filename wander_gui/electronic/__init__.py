"""Electronic structure from Wannier Hamiltonians: H(R) -> H(k), k paths, solvers, DOS."""
