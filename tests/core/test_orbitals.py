import numpy as np
from scipy.spatial.transform import Rotation

from wander_gui.core.orbitals import orbital_labels, orbital_offsets, real_harmonic_rotation


def test_p_representation_is_rotation_matrix():
    R = Rotation.random(random_state=3).as_matrix()
    assert np.allclose(real_harmonic_rotation(R, 1), R)


def test_d_representation_is_orthogonal_homomorphism():
    R1 = Rotation.random(random_state=4).as_matrix()
    R2 = Rotation.random(random_state=5).as_matrix()
    D1, D2 = real_harmonic_rotation(R1, 2), real_harmonic_rotation(R2, 2)
    assert np.allclose(D1 @ D1.T, np.eye(5))
    assert np.allclose(real_harmonic_rotation(R1 @ R2, 2), D1 @ D2)


def test_dz2_invariant_about_z_and_dxy_rotates_into_dx2y2():
    Rz45 = Rotation.from_euler("z", 45, degrees=True).as_matrix()
    D = real_harmonic_rotation(Rz45, 2)
    assert np.allclose(D[:, 0], [1, 0, 0, 0, 0])
    # rotating d_x2-y2 by 45 deg about z gives d_xy (up to sign)
    assert np.isclose(abs(D[4, 3]), 1.0)


def test_offsets_and_labels():
    off, cnt = orbital_offsets(["Mo", "S", "S"], "Mo")
    assert list(cnt) == [5, 3, 3] and list(off) == [0, 5, 8]
    assert orbital_labels(["Mo", "S"], "Mo")[0] == "0:Mo:dz2"
