"""Junction boxes, their signals and the conflicts between movements (occworld_tokyo.agents.junctions)."""

from __future__ import annotations

import numpy as np
import pytest

from occworld_tokyo.agents.junctions import ALL_RED, AMBER, GREEN, Movements, Signals, build_junctions
from occworld_tokyo.agents.paths import lane_path, resample
from occworld_tokyo.agents.specs import TrafficSpec
from occworld_tokyo.agents.streets import build_network, clearance_map, lookup

from test_agents_traffic import STREET, make_cross_world

SPEC = TrafficSpec()


@pytest.fixture(scope="module")
def cross():
    world = make_cross_world()
    net = build_network(world, SPEC, None)
    return net, build_junctions(net, lookup(world, clearance_map(world, SPEC.vehicle_clear_height)))


def test_one_junction_with_four_approaches_paired_by_street(cross):
    net, junctions = cross
    assert junctions.n == 1
    centre = net.nodes[junctions.node_cluster == 0].mean(axis=0)
    np.testing.assert_allclose(centre, [sum(STREET) / 2] * 2, atol=2.0)
    # the box reaches just past the crossing street (20 m wide, buildings set back 3 m)
    radius = junctions.node_radius[junctions.node_cluster == 0]
    assert ((radius > 10.0) & (radius < 16.0)).all()
    pts, groups = junctions.approach_points[0], junctions.approach_groups[0]
    assert len(pts) == 4 and sorted(np.bincount(groups)) == [2, 2]
    for g in (0, 1):  # a group = the two ends of one street: same x (north-south) or same y (east-west)
        a, b = pts[groups == g]
        assert min(abs(a[0] - b[0]), abs(a[1] - b[1])) < 2.0 and np.linalg.norm(a - b) > 20.0
    # a bend and a dead end are not junctions
    assert (junctions.node_cluster == -1).sum() == len(net.nodes) - 1


def test_zone_runs_name_approach_and_exit(cross):
    net, junctions = cross
    c = sum(STREET) / 2
    # a lane from the west end to the north end: enters from the west approach, leaves by the north one
    centre = resample(np.array([[10.0, c], [c, c], [c, 190.0]]), SPEC.path_step)
    lane = lane_path(centre, SPEC.lane_offset, SPEC.path_smoothing, SPEC.path_step)
    runs = junctions.zone_runs(net.nodes, lane.xy, lane.step)
    assert len(runs) == 1
    j, s_in, s_out, app, out = runs[0]
    pts = junctions.approach_points[j]
    assert pts[app][0] < c - 5 and pts[out][1] > c + 5
    assert 60.0 < s_in < s_out < 120.0
    xy_in, _ = lane.at(s_in)
    assert np.linalg.norm(xy_in - net.nodes[junctions.node_cluster == 0][0]) == pytest.approx(
        junctions.node_radius[junctions.node_cluster == 0][0], abs=1.0)


def _signals(n_approaches: int = 4) -> Signals:
    class OneJunction:
        n = 1
        approach_groups = (np.array([0, 1, 1, 0])[:n_approaches],)
        approach_points = (np.zeros((n_approaches, 2)),)

    sig = Signals(OneJunction(), SPEC, np.random.default_rng(0))
    sig.state[:], sig.green[:], sig.timer[:] = GREEN, 0, 0.0
    return sig


def test_green_rests_while_no_one_else_waits():
    sig = _signals()
    for _ in range(400):
        sig.step(0.25, np.array([[True, False, False, True]]), np.array([False]))
    assert sig.state[0] == GREEN and sig.green[0] == 0


def test_signal_cycle_min_green_amber_and_all_red_until_the_box_is_empty():
    sig = _signals()
    waiting = np.array([[True, True, False, False]])  # both groups called, group 0 keeps its demand
    t, states = 0.0, []
    while sig.state[0] == GREEN:
        sig.step(0.25, waiting, np.array([False]))
        t += 0.25
    assert t == pytest.approx(SPEC.signal_max_green)  # own demand keeps the green up to the maximum
    while sig.state[0] == AMBER:
        sig.step(0.25, waiting, np.array([False]))
        states.append(AMBER)
    assert len(states) * 0.25 == pytest.approx(SPEC.signal_amber)
    assert sig.state[0] == ALL_RED
    for _ in range(40):  # a vehicle still in the box holds the all-red
        sig.step(0.25, waiting, np.array([True]))
    assert sig.state[0] == ALL_RED
    sig.step(0.25, waiting, np.array([False]))
    assert sig.state[0] == GREEN and sig.green[0] == 1


def test_green_ends_at_min_green_when_its_street_is_empty():
    sig = _signals()
    t = 0.0
    while sig.state[0] == GREEN:
        sig.step(0.25, np.array([[False, True, False, False]]), np.array([False]))
        t += 0.25
    assert t == pytest.approx(SPEC.signal_min_green)


def test_may_enter_green_amber_and_red():
    sig = _signals()
    j, far, near = np.zeros(4, np.int64), 30.0, 1.0
    approach = np.array([0, 3, 1, 0])
    gap = np.array([far, far, near, near])
    v = np.full(4, 10.0)
    assert sig.may_enter(j, approach, gap, v, np.zeros(4, bool)).tolist() == [True, True, False, True]
    sig.state[0] = AMBER  # only the one too close to stop (and one waiting at the line to turn) go on
    giving_way = np.array([False, True, False, False])
    assert sig.may_enter(j, approach, gap, v, giving_way).tolist() == [False, True, False, True]
    sig.state[0] = ALL_RED
    assert not sig.may_enter(j, approach, gap, v, giving_way).any()


def _movement(moves: Movements, key, points) -> None:
    centre = resample(np.array(points, dtype=float), SPEC.path_step)
    lane = lane_path(centre, SPEC.lane_offset, SPEC.path_smoothing, SPEC.path_step)
    box = np.linalg.norm(lane.xy - 100.0, axis=1) < 13.0
    moves.learn(key, lane.xy[box], lane.yaw[box])


def test_movements_conflicts_and_right_of_way():
    moves = Movements()
    west, east, north, south = [60.0, 100.0], [140.0, 100.0], [100.0, 140.0], [100.0, 60.0]
    car, bus = (4.8, 1.9), (11.9, 2.6)
    straight_we = (0, 0, 1)
    _movement(moves, straight_we, [west, [100, 100], east])
    _movement(moves, (0, 1, 0), [east, [100, 100], west])  # oncoming straight
    _movement(moves, (0, 1, 2), [east, [100, 100], north])  # oncoming right turn (keep left: crosses)
    _movement(moves, (0, 1, 3), [east, [100, 100], south])  # oncoming left turn
    _movement(moves, (0, 2, 1), [north, [100, 100], east])  # from the north turning left into the east exit
    step = SPEC.path_step
    assert moves.conflict(straight_we, car, (0, 1, 0), car, step) is None  # opposite lanes pass
    assert moves.conflict(straight_we, car, (0, 1, 3), car, step) is None  # a left turn stays in its corner
    assert moves.conflict(straight_we, car, (0, 1, 2), car, step) is not None  # a right turn crosses
    assert moves.conflict(straight_we, car, (0, 2, 1), car, step) is not None  # merging into one exit
    end = moves.conflict(straight_we, bus, (0, 1, 2), bus, step)
    assert end is not None and end >= moves.conflict(straight_we, car, (0, 1, 2), car, step)
    assert moves.turn((0, 1, 2)) < -1.0 < 1.0 < moves.turn((0, 1, 3))
    assert moves.has_way(straight_we, (0, 1, 2)) and not moves.has_way((0, 1, 2), straight_we)
    assert moves.has_way((0, 1, 3), straight_we)
    assert moves.has_way(straight_we, (0, 1, 0)) != moves.has_way((0, 1, 0), straight_we)  # ties are strict
