"""Machine-learned models (torch only): deep-potential force field and Hamiltonian heads."""
