# GPAW build configuration used by .ci/install for the [dft] extra:
# serial build (no MPI, no ScaLAPACK) against Debian's libxc, OpenBLAS and FFTW3.
mpi = False
scalapack = False
fftw = True
libraries = ['xc', 'openblas', 'fftw3']
# GPAW >= 25 compiles its extension as C++17; the default `gcc` driver would treat the
# .c sources as C and fail on <algorithm>.
compiler = 'g++'
