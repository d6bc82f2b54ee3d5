"""Reference generation: GPAW PBE+D3 calculations, projected Wannier Hamiltonians, datasets.

Needs the optional ``[dft]`` extra (GPAW, simple-dftd3); importing this package does not.
"""
