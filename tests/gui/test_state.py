from wander_gui.gui.state import MoireState


def test_snap_and_build():
    s = MoireState()
    s.angle = 9.4
    assert s.snapped["n_atoms"] == 222
    s.build = True
    assert len(s.atoms) == 222
    assert "222 atoms" in s.message


def test_sessions_are_independent():
    a, b = MoireState(), MoireState()
    a.angle = 13.2
    a.build = True
    assert b.atoms is None and b.snapped["n_atoms"] == 42


def test_budget_error_is_a_message_not_a_crash():
    s = MoireState()
    s.max_atoms = 6
    assert s.snapped == {}
    assert "max_atoms" in s.message or "angle" in s.message
