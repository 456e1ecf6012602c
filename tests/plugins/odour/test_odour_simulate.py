import numpy as np
import pytest

from plugins.odour.enrichment import bearing_deg
from plugins.odour.events import detect_events, detect_events_arrays
from plugins.odour.simulate import simulate_arrays, simulate_factory


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_every_planted_episode_is_found_and_noise_stays_possible(seed):
    sim = simulate_factory(seed=seed)
    result = detect_events(sim.reports)
    found = result.groups()
    for episode in sim.episodes:
        assert frozenset(episode.report_ids) in found, f"episode {episode.id} not recovered as one event"
    assert len(result.events) == len(sim.episodes)
    assert set(sim.noise_ids) <= set(result.possible)


def test_planted_episodes_look_like_a_plume():
    sim = simulate_factory(seed=7, episodes=6, noise_reports=10)
    reports = {r.id: r for r in sim.reports}
    assert len(sim.episodes) == 6 and len(sim.noise_ids) == 10
    for episode in sim.episodes:
        assert len(episode.contributors) >= 3
        assert (episode.end - episode.start).total_seconds() <= 3 * 3600
        downwind = (episode.wind_from_deg + 180) % 360
        for rid in episode.report_ids:
            r = reports[rid]
            b = bearing_deg(sim.factory_lat, sim.factory_lon, r.lat, r.lon)
            assert abs((b - downwind + 180) % 360 - 180) < 15
            assert r.hedonic_tone < 0 and r.intensity >= 1
    days = sorted(e.start.date() for e in sim.episodes)
    assert len(set(days)) == 6, "one episode a day at most"


def test_large_simulation_is_mostly_recovered():
    arrays, truth = simulate_arrays(20_000, seed=1)
    assert len(arrays) == 20_000
    assert 0.5 < (truth >= 0).mean() < 0.7
    result = detect_events_arrays(arrays)
    event_of = result.event_of()
    whole = 0
    episodes = np.unique(truth[truth >= 0])
    for ep in episodes:
        ids = arrays.ids[truth == ep].tolist()
        events = {event_of.get(i) for i in ids}
        whole += len(events) == 1 and None not in events
    assert whole / len(episodes) > 0.9
