"""The identification rules (plugins/identification/rules.py) on iNaturalist's own cases.

Each test names the case it ports: ``observation_spec`` is iNaturalist's
spec/models/observation_spec.rb, ``basics_spec`` spec/models/observation_basics_spec.rb,
``identification_spec`` spec/models/identification_spec.rb. The "test cases" use iNat's
setup_test_case_taxonomy and its notation ("s1 s1 g1.disagreement": two identifications of s1,
then one of g1 that explicitly disagrees)::

             sf                       Life
             |                        /   \\
             f                  Animalia  Plantae
          /     \\                   |
         g1     g2                Chordata > Aves > Trochilidae > Calypte
        /  \\                                                    /     \\
       s1  s2                                         Calypte anna   Calypte costae
      /  \\   \\
    ss1  ss2 s2ss1
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.identification import rules
from plugins.identification.rules import (CASUAL, IMPROVING, LEADING, MAVERICK, NEEDS_ID, RESEARCH, SUPPORTING,
                                          Community, GradeFacts, Ident)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


class Tree:
    """A small taxonomy: name -> id, ancestry and rank level, as the callers read them from `taxa`."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.ancestry: dict[int, tuple[int, ...]] = {}
        self.rank_level: dict[int, float] = {}

    def add(self, name: str, rank: str, parent: str | None = None) -> int:
        taxon_id = len(self.ids) + 1
        self.ids[name] = taxon_id
        self.ancestry[taxon_id] = () if parent is None else (*self.ancestry[self.ids[parent]], self.ids[parent])
        self.rank_level[taxon_id] = rules.RANK_LEVELS[rank]
        return taxon_id

    def __getitem__(self, name: str) -> int:
        return self.ids[name]


def make_tree() -> Tree:
    """iNat's setup_test_case_taxonomy, plus a Life tree (load_test_taxa's hummingbirds)."""
    tree = Tree()
    tree.add("sf", "superfamily")
    tree.add("f", "family", "sf")
    for genus in ("g1", "g2"):
        tree.add(genus, "genus", "f")
    for species in ("s1", "s2", "s3", "s4"):
        tree.add(species, "species", "g1")
    tree.add("ss1", "subspecies", "s1")
    tree.add("ss2", "subspecies", "s1")
    tree.add("s2ss1", "subspecies", "s2")
    tree.add("Life", "stateofmatter")
    tree.add("Animalia", "kingdom", "Life")
    tree.add("Plantae", "kingdom", "Life")
    tree.add("Chordata", "phylum", "Animalia")
    tree.add("Aves", "class", "Chordata")
    tree.add("Trochilidae", "family", "Aves")
    tree.add("Calypte", "genus", "Trochilidae")
    tree.add("Calypte anna", "species", "Calypte")
    tree.add("Calypte costae", "species", "Calypte")
    tree.add("Calypte sp3", "species", "Calypte")
    return tree


@dataclass
class Obs:
    """An observation's identifications as the store would keep them: a person's new one replaces
    their current one; each records the observation's probable taxon when made (iNat's
    previous_observation_taxon)."""

    tree: Tree
    expert_weight: int = 1
    idents: list[Ident] = field(default_factory=list)
    _people: count = field(default_factory=lambda: count(100))

    def add(self, name: str, *, user: int | None = None, disagreement: bool | None = None, own: bool = False,
            expert: bool = False) -> Ident:
        user = 1 if own else (user if user is not None else next(self._people))
        self.idents = [replace(i, current=False) if i.account_id == user else i for i in self.idents]
        taxon_id = self.tree[name]
        ident = Ident(id=len(self.idents) + 1, account_id=user, taxon_id=taxon_id,
                      ancestry=self.tree.ancestry[taxon_id], created_at=T0 + timedelta(minutes=len(self.idents)),
                      disagreement=disagreement, own=own, expert=expert, previous_taxon_id=self.probable())
        self.idents.append(ident)
        return ident

    def run(self, notation: str) -> Obs:
        """iNat's notation: "s1 s1 g1.disagreement s1.withdraw" (withdraw: the first current one)."""
        for token in notation.split():
            name, _, flag = token.partition(".")
            if flag == "withdraw":
                first = next(i for i in self.idents if i.current and i.taxon_id == self.tree[name])
                self.withdraw(first.id)
            else:
                flags = {"": None, "disagreement": True, "disagreement_true": True,
                         "disagreement_false": False, "disagreement_nil": None}
                self.add(name, disagreement=flags[flag])
        return self

    def withdraw(self, ident_id: int) -> None:
        self.idents = [replace(i, current=False) if i.id == ident_id else i for i in self.idents]

    def restore(self, ident_id: int) -> None:
        self.idents = [replace(i, current=True) if i.id == ident_id else i for i in self.idents]

    def community(self) -> Community:
        return rules.community_taxon(self.idents, self.tree.rank_level, expert_weight=self.expert_weight)

    def probable(self) -> int | None:
        return rules.probable_taxon(self.idents, self.community(), self.tree.rank_level)

    def community_name(self) -> str | None:
        return self.name(self.community().taxon_id)

    def taxon(self, prefers_community_taxon: bool = True) -> int | None:
        return rules.observation_taxon(self.community(), self.idents, prefers_community_taxon,
                                       rank_level=self.tree.rank_level)

    def taxon_name(self, prefers_community_taxon: bool = True) -> str | None:
        return self.name(self.taxon(prefers_community_taxon))

    def name(self, taxon_id: int | None) -> str | None:
        return None if taxon_id is None else next(n for n, i in self.tree.ids.items() if i == taxon_id)

    def categories(self) -> list[str]:
        found = rules.categories(self.idents, self.community())
        return [found[i.id] for i in self.idents]

    def grade(self, *, prefers_community_taxon: bool = True, votes: tuple[tuple[str, bool], ...] = (),
              has_date: bool = True, has_location: bool = True, has_media: bool = True, flagged: bool = False,
              require_expert: bool = False, human: bool = False) -> str:
        community = self.community()
        return rules.quality_grade(GradeFacts(
            community=community, taxon_id=self.taxon(prefers_community_taxon), rank_level=self.tree.rank_level,
            has_date=has_date, has_location=has_location, has_media=has_media, votes=votes, flagged=flagged,
            expert_agrees=rules.expert_agrees(self.idents, community), require_expert=require_expert,
            prefers_community_taxon=prefers_community_taxon, idents=self.idents, human=human))


@pytest.fixture
def tree() -> Tree:
    return make_tree()


def obs(tree: Tree, notation: str = "", expert_weight: int = 1) -> Obs:
    return Obs(tree, expert_weight).run(notation)


NO_FURTHER_ID = (("needs_id", False),)   # one "no further ID possible" vote


# --- community taxon: observation_spec "community taxon" / "test cases: " -------------------------

@pytest.mark.parametrize(("notation", "expected"), [
    ("s1 s1 s2", "g1"),
    ("s1 s1 g1", "s1"),
    ("s1 s1 g1.disagreement", "g1"),
    ("s1 s1 g1.disagreement_false", "s1"),
    ("s1 s1 s1 g1", "s1"),
    ("s1 s1 s2 s2", "g1"),                                    # a tie between species: their genus
    ("f f f f ss1 s2 s2 s2 s2", "s2"),                        # 4/5 > 2/3
    ("f f f f ss1 ss1 s2 s2 s2 s2 g1", "g1"),                 # s2 scores exactly 2/3: not above
    ("f g1 s1", "g1"),                                        # s1 has only one identification
    ("f f g1 s1", "g1"),
    ("s1 s1 f f", "s1"),
    ("s1 s1 f.disagreement f", "f"),
    ("s1 s2 f.disagreement g2 g2 s1.withdraw s2.withdraw", "g2"),
    ("s1 s2 f.disagreement g2 g2 s1.withdraw", "f"),
])
def test_observation_spec_community_taxon_test_cases(tree: Tree, notation: str, expected: str) -> None:
    assert obs(tree, notation).community_name() == expected


def test_observation_spec_exactly_two_thirds_is_not_enough(tree: Tree) -> None:
    """"f f f f ss1 ss1 s2 s2 s2 s2 g1": s2's node is 4 / (4 + 2) = 2/3, the cutoff itself."""
    o = obs(tree, "f f f f ss1 ss1 s2 s2 s2 s2 g1")
    s2 = next(n for n in rules.community_nodes(o.idents, tree.rank_level) if n.taxon_id == tree["s2"])
    assert (s2.cumulative, s2.disagreements, s2.score) == (4, 2, pytest.approx(2 / 3))
    assert o.community() == Community(tree["g1"], 1.0, 7, 0, 0)


def test_observation_spec_ancestor_disagreement_counts_against_the_taxon_disagreed_with(tree: Tree) -> None:
    """"s1 s1 g1.disagreement": s1 scores 2 / (2 + 0 + 1); the explicit g1 is an ancestor disagreement."""
    nodes = {n.taxon_id: n for n in rules.community_nodes(obs(tree, "s1 s1 g1.disagreement").idents,
                                                             tree.rank_level)}
    assert (nodes[tree["s1"]].cumulative, nodes[tree["s1"]].ancestor_disagreements) == (2, 1)
    assert nodes[tree["g1"]].ancestor_disagreements == 0


def test_observation_spec_s1_s1_g1_disagreement_nil_differs_legacy_nil_means_no_disagreement(tree: Tree) -> None:
    """iNat's "s1 s1 g1.disagreement_nil" gives g1: for identifications made before the flag existed
    (nil) a later ancestor identification counts as a disagreement. Ours have no such past: None is
    "not stated", the same as False, so s1 stays (documented difference)."""
    assert obs(tree, "s1 s1 g1.disagreement_nil").community_name() == "s1"


def test_explicit_disagreement_without_previous_taxon_rejects_everything_below_it(tree: Tree) -> None:
    """A caller that does not know the previous observation taxon: "No, but g1" rejects s1 all the same."""
    o = obs(tree, "s1 s1")
    o.idents.append(Ident(3, 7, tree["g1"], tree.ancestry[tree["g1"]], T0 + timedelta(hours=1), disagreement=True))
    assert o.community_name() == "g1"


def test_observation_spec_withdrawn_identifications_are_ignored(tree: Tree) -> None:
    """observation_spec "with test cases": reverts the community ID and quality grade on identification
    withdrawal (f by the observer, s1, s1: research; one s1 withdrawn: back to f and needs_id)."""
    o = Obs(tree)
    o.add("f", own=True)
    o.add("s1")
    assert (o.community_name(), o.grade()) == ("f", NEEDS_ID)
    second = o.add("s1")
    assert (o.community_name(), o.grade()) == ("s1", RESEARCH)
    o.withdraw(second.id)
    assert (o.community_name(), o.grade()) == ("f", NEEDS_ID)


def test_observation_spec_not_set_if_there_is_only_one_current_identification(tree: Tree) -> None:
    o = Obs(tree)
    o.add("s1", own=True)
    o.add("s1", own=True)                      # replaces the first
    assert o.community() == Community(None, None)


def test_observation_spec_not_set_for_2_roots() -> None:
    tree = Tree()
    tree.add("root1", "kingdom")
    tree.add("root2", "kingdom")
    assert obs(tree, "root1 root2").community() == Community(None, None)


def test_observation_spec_set_to_life_for_two_phyla(tree: Tree) -> None:
    assert obs(tree, "Animalia Plantae").community_name() == "Life"


def test_observation_spec_set_if_observer_opted_out(tree: Tree) -> None:
    """"should be set if observation is opted out": the community taxon is computed all the same."""
    o = Obs(tree)
    o.add("s1", own=True)
    o.add("s1")
    assert o.community_name() == "s1"
    assert o.taxon_name(prefers_community_taxon=False) == "s1"


def test_community_taxon_needs_an_expert_weight_of_one_or_more(tree: Tree) -> None:
    with pytest.raises(ValueError):
        rules.community_taxon(obs(tree, "s1 s1").idents, tree.rank_level, expert_weight=0)


# --- expert weight (the project's expert_weight: an expert's identification counts twice) ---------

def test_expert_weight_2_makes_an_experts_dissent_outweigh_a_majority(tree: Tree) -> None:
    """s1 s1 s1 against an expert's s2: 3/4 with weight 1 (s1), 3/5 with weight 2 (back to g1)."""
    for weight, expected in ((1, "s1"), (2, "g1")):
        o = obs(tree, "s1 s1 s1", expert_weight=weight)
        o.add("s2", expert=True)
        assert o.community_name() == expected
        assert o.community().cumulative == (3 if weight == 1 else 5)


def test_expert_weight_2_lets_an_expert_refine_a_coarser_identification(tree: Tree) -> None:
    """g1 then an expert's s1: the expert's s1 counts 2 (cumulative > 1, score 1), so s1 wins."""
    for weight, expected in ((1, "g1"), (2, "s1")):
        o = obs(tree, "g1", expert_weight=weight)
        o.add("s1", expert=True)
        assert o.community_name() == expected


def test_expert_weight_2_counts_an_experts_explicit_disagreement_twice(tree: Tree) -> None:
    for weight, expected in ((1, "s1"), (2, "g1")):
        o = obs(tree, "s1 s1 s1", expert_weight=weight)
        o.add("g1", disagreement=True, expert=True)
        assert o.community_name() == expected
    s1 = next(n for n in rules.community_nodes(o.idents, tree.rank_level, expert_weight=2) if n.taxon_id == tree["s1"])
    assert (s1.cumulative, s1.ancestor_disagreements) == (3, 2)


def test_a_single_experts_identification_is_no_community(tree: Tree) -> None:
    o = Obs(tree, expert_weight=2)
    o.add("s1", expert=True)
    assert o.community() == Community(None, None)


# --- categories: identification_spec "category" ---------------------------------------------------

def test_identification_spec_improving_first_that_matches_the_community_taxon(tree: Tree) -> None:
    assert obs(tree, "s1 s1").categories() == [IMPROVING, SUPPORTING]


def test_identification_spec_improving_qualifies_but_isnt_current(tree: Tree) -> None:
    o = Obs(tree)
    first = o.add("g1", user=5)
    o.add("s1")
    o.add("s1", user=5)                       # replaces g1
    assert not o.idents[0].current
    assert rules.categories(o.idents, o.community())[first.id] == IMPROVING


def test_identification_spec_improving_ancestor_not_added_after_first_of_community_taxon(tree: Tree) -> None:
    o = obs(tree, "g1 s1 s1 s1")
    assert o.community_name() == "s1"
    assert o.categories()[0] == IMPROVING


def test_identification_spec_maverick_when_the_community_taxon_is_not_an_ancestor(tree: Tree) -> None:
    """iNat's case is "t t u" with t and u two roots; see the next test for why ours has a third t."""
    assert obs(tree, "s1 s1 s1 g2").categories()[3] == MAVERICK


def test_no_qualifying_taxon_means_no_community_taxon_differs_in_a_forest() -> None:
    """iNat's get_community_taxon sorts the nodes with more than one identification and takes the
    last even when none scores above 2/3: with two roots and no Life above them, "t t u" gives t
    at 2/3. Its real tree always has Life (which then qualifies); ours may be a forest, where we
    keep the published rule: no taxon above 2/3, no community taxon (documented difference)."""
    tree = Tree()
    tree.add("t", "species")
    tree.add("u", "species")
    o = obs(tree, "t t u")
    assert o.community() == Community(None, None)
    assert o.categories() == [LEADING, LEADING, LEADING]


def test_identification_spec_leading_when_only_id_or_below_the_community_taxon(tree: Tree) -> None:
    assert obs(tree, "s1").categories() == [LEADING]
    assert obs(tree, "g1 g1 s1").categories()[2] == LEADING


def test_identification_spec_supporting_when_not_the_first_of_that_taxon(tree: Tree) -> None:
    assert obs(tree, "g1 s1 s1").categories() == [IMPROVING, IMPROVING, SUPPORTING]


def test_identification_spec_sequence_along_the_same_ancestry(tree: Tree) -> None:
    """Chordata, Aves, Calypte, Calypte anna: all improving until the community taxon (Calypte),
    which is improving too; the last is leading. The first identifier then agreeing with the last
    leaves the earlier ones improving."""
    o = obs(tree, "Chordata Aves Calypte")
    o.add("Calypte anna")
    assert o.community_name() == "Calypte"
    assert o.categories() == [IMPROVING, IMPROVING, IMPROVING, LEADING]
    o.add("Calypte anna", user=o.idents[0].account_id)
    assert not o.idents[0].current
    assert o.categories()[:2] == [IMPROVING, IMPROVING]


def test_identification_spec_after_withdrawing_and_restoring(tree: Tree) -> None:
    o = Obs(tree)
    o.add("Calypte anna", user=1)
    o.add("Calypte", user=1)
    third = o.add("Calypte", user=2)
    o.add("Calypte anna", user=1)
    assert o.community_name() == "Calypte"
    assert o.categories()[2] == SUPPORTING
    o.withdraw(third.id)
    o.restore(third.id)
    assert o.categories()[2] == SUPPORTING


def test_identification_spec_conservative_disagreement_matching_the_community_taxon_is_improving(tree: Tree) -> None:
    o = Obs(tree)
    o.add("Calypte anna")
    o.add("Calypte")
    o.add("Calypte")
    assert o.community_name() == "Calypte"
    assert o.categories()[1:] == [IMPROVING, SUPPORTING]


def test_identification_spec_single_user_redundant_identifications(tree: Tree) -> None:
    o = Obs(tree)
    o.add("Calypte", user=3)
    o.add("Calypte", user=3)
    assert o.categories()[-1] == LEADING


def test_identification_spec_disagreement_within_a_genus(tree: Tree) -> None:
    o = Obs(tree)
    for name in ("Calypte anna", "Calypte costae", "Calypte sp3"):
        o.add(name)
    assert o.community_name() == "Calypte"
    assert o.categories() == [LEADING, LEADING, LEADING]


def test_identification_spec_disagreement_with_revision(tree: Tree) -> None:
    o = Obs(tree)
    o.add("Calypte", user=4)
    o.add("Calypte anna", user=4)
    o.add("Calypte")
    assert o.community_name() == "Calypte"
    assert o.categories() == [IMPROVING, LEADING, SUPPORTING]


# --- observation taxon: observation_spec "probable_taxon" and "community taxon" -------------------

@pytest.mark.parametrize(("notation", "expected"), [
    ("s1", "s1"),
    ("s1 g1.disagreement_true", "g1"),
    ("s1 g1.disagreement_false", "s1"),
    ("ss1 s1.disagreement_false", "ss1"),
    ("s1 g1.disagreement_false g1.disagreement_false", "s1"),
    ("s1 s2", "g1"),
    ("g2 s1", "f"),
    ("s1 ss1", "s1"),                     # a subspecies proposed after the community taxon: its species
    ("s1 s1 ss1", "s1"),
    ("ss1 s1.disagreement_true", "s1"),
    ("g1 ss1", "s1"),
    ("ss1 s2ss1", "g1"),
    ("s1 s2 f.disagreement g2 s1.withdraw s2.withdraw", "g2"),
    ("s1 s2 f.disagreement g2 s1.withdraw", "f"),
])
def test_observation_spec_probable_taxon_test_cases(tree: Tree, notation: str, expected: str) -> None:
    assert obs(tree, notation).taxon_name() == expected


def test_observation_spec_probable_taxon_g2_f_disagreement_true_s1(tree: Tree) -> None:
    """The f disagreed with g2; its identifier then switched to s1, so f rejects nothing any more."""
    o = Obs(tree)
    first = o.add("g2", user=8)
    o.add("f", disagreement=True)
    o.add("s1", user=first.account_id)
    assert o.probable() == tree["s1"]


def test_observation_spec_should_set_the_taxon_and_not_when_opted_out(tree: Tree) -> None:
    o = obs(tree, "s1 s1")
    assert o.taxon() == o.community().taxon_id == tree["s1"]
    assert o.taxon(prefers_community_taxon=False) is None      # the observer has no identification


def test_observation_spec_change_the_taxon_to_the_owners_identification_when_opted_out(tree: Tree) -> None:
    o = Obs(tree)
    o.add("g2", own=True)
    o.run("s1 s1 s1")
    assert (o.community_name(), o.taxon_name()) == ("s1", "s1")
    assert o.taxon_name(prefers_community_taxon=False) == "g2"


def test_observation_taxon_without_rank_levels_keeps_the_finest(tree: Tree) -> None:
    """Without rank levels the subspecies rule cannot apply: "s1 ss1" stays at ss1."""
    o = obs(tree, "s1 ss1")
    assert rules.observation_taxon(o.community(), o.idents, True) == tree["ss1"]
    assert rules.observation_taxon(Community(None, None), [], True) is None


# --- data-quality votes: observation_spec "quality_metrics_pass", quality_metric_spec ------------

def test_observation_spec_quality_metrics_pass() -> None:
    metrics = rules.QUALITY_METRICS
    assert all(rules.metric_passes([]).values())                                  # no metrics to fail
    assert all(rules.metric_passes([(m, True) for m in metrics]).values())        # all pass
    for metric in metrics:
        assert rules.metric_passes([(metric, True)])[metric]                      # any passes
        assert not rules.metric_passes([(metric, False)])[metric]                 # any fails
        assert rules.metric_passes([(metric, True), (metric, False)])[metric]     # votes offset each other


def test_quality_metric_spec_wild_follows_the_majority() -> None:
    assert rules.metric_passes([("wild", False), ("wild", True), ("wild", True)])["wild"]
    assert not rules.metric_passes([("wild", False), ("wild", False), ("wild", True)])["wild"]


# --- quality grade: basics_spec "quality_grade" ----------------------------------------------------

def research_candidate(tree: Tree, name: str = "s1") -> Obs:
    """make_research_grade_candidate_observation(taxon: name): the observer's identification."""
    o = Obs(tree)
    o.add(name, own=True)
    return o


def test_basics_spec_becomes_research_when_it_qualifies(tree: Tree) -> None:
    o = research_candidate(tree)
    o.add("s1")
    assert o.grade(has_date=False) == CASUAL
    assert o.grade() == RESEARCH


def test_get_quality_grade_research_needs_the_community_taxon_to_be_the_observation_taxon(tree: Tree) -> None:
    """iNat's "ss1 s1.disagreement_false": the community taxon is s1 but the subspecies came first, so
    the observation's taxon is ss1 and get_quality_grade (community_taxon == taxon) keeps it needs_id."""
    o = obs(tree, "ss1 s1.disagreement_false")
    assert (o.community_name(), o.taxon_name(), o.grade()) == ("s1", "ss1", NEEDS_ID)
    o.add("ss1")
    assert (o.community_name(), o.taxon_name(), o.grade()) == ("ss1", "ss1", RESEARCH)


def test_basics_spec_not_research_if_community_taxon_above_family(tree: Tree) -> None:
    o = obs(tree, "Aves Aves")
    assert (o.community_name(), o.grade()) == ("Aves", NEEDS_ID)


def test_basics_spec_casual_without_date_location_media_or_when_flagged(tree: Tree) -> None:
    o = obs(tree, "s1 s1")
    assert o.grade() == RESEARCH
    assert o.grade(has_date=False) == CASUAL
    assert o.grade(has_location=False) == CASUAL
    assert o.grade(has_media=False) == CASUAL
    assert o.grade(flagged=True) == CASUAL
    assert o.grade(human=True) == CASUAL                  # "casual if the community taxon is Homo sapiens"


def test_observation_spec_get_quality_grade_failing_quality_metrics_is_casual(tree: Tree) -> None:
    o = obs(tree, "s1 s1")
    for metric in rules.QUALITY_METRICS:
        assert o.grade(votes=((metric, False),)) == CASUAL
        assert o.grade(votes=((metric, False), (metric, True))) == RESEARCH


def test_basics_spec_research_when_community_taxon_is_obs_taxon_and_owner_agrees(tree: Tree) -> None:
    o = obs(tree, "g1 s1")
    o.add("s1", own=True)
    assert (o.community_name(), o.taxon_name(), o.grade()) == ("s1", "s1", RESEARCH)


def test_basics_spec_needs_id_if_no_identifications_or_only_one(tree: Tree) -> None:
    assert Obs(tree).grade() == NEEDS_ID
    assert research_candidate(tree).grade() == NEEDS_ID          # "should be needs ID if elligible"


def test_basics_spec_not_research_if_the_community_taxon_is_life(tree: Tree) -> None:
    o = obs(tree, "Animalia Plantae")
    assert (o.community_name(), o.grade()) == ("Life", NEEDS_ID)


def test_basics_spec_voted_out_and_community_taxon_above_family_is_casual(tree: Tree) -> None:
    assert obs(tree, "Aves Aves").grade(votes=NO_FURTHER_ID) == CASUAL


@pytest.mark.parametrize("name", ["g1", "Calypte"])
def test_basics_spec_voted_out_and_community_taxon_below_family_is_research(tree: Tree, name: str) -> None:
    """"no further ID possible": research grade at genus."""
    o = obs(tree, f"{name} {name}")
    assert o.grade() == NEEDS_ID
    assert o.grade(votes=NO_FURTHER_ID) == RESEARCH


def test_basics_spec_voted_out_below_family_but_above_genus_is_research() -> None:
    tree = Tree()
    tree.add("Hydropsychidae", "family")
    tree.add("Hydropsychinae", "subfamily", "Hydropsychidae")
    o = obs(tree, "Hydropsychinae Hydropsychinae")
    assert o.grade(votes=NO_FURTHER_ID) == RESEARCH
    assert obs(tree, "Hydropsychidae Hydropsychidae").grade(votes=NO_FURTHER_ID) == CASUAL   # not below family


def test_basics_spec_needs_id_if_voted_back_in_or_voted_out_without_community_taxon(tree: Tree) -> None:
    assert research_candidate(tree).grade(votes=(("needs_id", False), ("needs_id", True))) == NEEDS_ID
    assert research_candidate(tree).grade(votes=NO_FURTHER_ID) == NEEDS_ID


def test_needs_id_voted_in_keeps_a_species_community_taxon_in_needs_id(tree: Tree) -> None:
    """get_quality_grade: voted_in_to_needs_id? (more yes than no) comes before the community taxon;
    as many yes as no is neither in nor out."""
    o = obs(tree, "s1 s1")
    assert o.grade(votes=(("needs_id", True),)) == NEEDS_ID
    assert o.grade(votes=(("needs_id", True), ("needs_id", False))) == RESEARCH
    assert obs(tree, "g1 g1").grade(votes=(("needs_id", True), ("needs_id", False))) == NEEDS_ID


def test_basics_spec_research_if_taxon_in_a_different_subtree_from_the_cid_taxon(tree: Tree) -> None:
    """The observer's s1 against three s2 (opted in): the observation follows the community to s2."""
    o = research_candidate(tree, "s1")
    o.run("s2 s2 s2")
    assert (o.community_name(), o.taxon_name(), o.grade()) == ("s2", "s2", RESEARCH)


# basics_spec "when observer opts out of CID"

def opted_out(tree: Tree, own: str, others: str) -> Obs:
    o = Obs(tree)
    o.add(own, own=True)
    return o.run(others)


def test_basics_spec_opted_out_casual_if_taxon_in_a_different_subtree(tree: Tree) -> None:
    o = opted_out(tree, "s1", "s2 s2 s2")
    assert (o.community_name(), o.taxon_name(False)) == ("s2", "s1")
    assert o.grade(prefers_community_taxon=False) == CASUAL


def test_basics_spec_opted_out_needs_id_if_no_cid(tree: Tree) -> None:
    assert research_candidate(tree).grade(prefers_community_taxon=False) == NEEDS_ID


def test_basics_spec_opted_out_needs_id_if_taxon_matches_a_family_cid(tree: Tree) -> None:
    o = opted_out(tree, "f", "f")
    assert (o.community_name(), o.grade(prefers_community_taxon=False)) == ("f", NEEDS_ID)


def test_basics_spec_opted_out_needs_id_if_taxon_above_species_is_an_ancestor_of_the_cid(tree: Tree) -> None:
    o = opted_out(tree, "g1", "s1 s1 s1")
    assert (o.community_name(), o.taxon_name(False)) == ("s1", "g1")
    assert o.grade(prefers_community_taxon=False) == NEEDS_ID


def test_basics_spec_opted_out_genus_and_cid_the_same_genus(tree: Tree) -> None:
    o = opted_out(tree, "g1", "g1 g1 g1")
    assert o.grade(prefers_community_taxon=False) == NEEDS_ID
    assert o.grade(prefers_community_taxon=False, votes=NO_FURTHER_ID) == RESEARCH


def test_basics_spec_opted_out_needs_id_if_the_cid_is_an_ancestor_of_the_taxon(tree: Tree) -> None:
    o = opted_out(tree, "s1", "g1 g1 g1")
    assert (o.community_name(), o.taxon_name(False)) == ("g1", "s1")
    assert o.grade(prefers_community_taxon=False) == NEEDS_ID


def test_basics_spec_opted_out_research_if_taxon_matches_a_species_cid(tree: Tree) -> None:
    assert opted_out(tree, "s1", "s1").grade(prefers_community_taxon=False) == RESEARCH


def test_basics_spec_opted_out_research_if_taxon_is_a_species_containing_the_cid(tree: Tree) -> None:
    o = opted_out(tree, "s1", "ss1 ss1")
    assert (o.community_name(), o.taxon_name(False)) == ("ss1", "s1")
    assert o.grade(prefers_community_taxon=False) == RESEARCH


def test_basics_spec_opted_out_research_if_both_the_same_subspecies(tree: Tree) -> None:
    assert opted_out(tree, "ss1", "ss1").grade(prefers_community_taxon=False) == RESEARCH


def test_basics_spec_opted_out_casual_if_the_observer_has_no_id_and_the_cid_is_at_species(tree: Tree) -> None:
    o = obs(tree, "s1 s1")
    assert (o.taxon(False), o.grade(prefers_community_taxon=False)) == (None, CASUAL)


def test_basics_spec_opted_out_conservative_disagreements_then_voted_out_is_casual(tree: Tree) -> None:
    o = opted_out(tree, "s1", "g1 g1")
    assert o.grade(prefers_community_taxon=False) == NEEDS_ID
    assert o.grade(prefers_community_taxon=False, votes=NO_FURTHER_ID) == CASUAL


def test_basics_spec_opted_out_subgenus_cid_voted_out_is_research() -> None:
    tree = Tree()
    tree.add("Bombus", "genus")
    tree.add("Pyrobombus", "subgenus", "Bombus")
    o = opted_out(tree, "Pyrobombus", "Pyrobombus")
    assert o.grade(prefers_community_taxon=False) == NEEDS_ID
    assert o.grade(prefers_community_taxon=False, votes=NO_FURTHER_ID) == RESEARCH


def test_identification_spec_opted_out_casual_once_the_observers_id_is_maverick(tree: Tree) -> None:
    o = Obs(tree)
    o.add("s1", own=True)
    for expected in (NEEDS_ID, NEEDS_ID, CASUAL):             # after one, two, three s2
        o.add("s2")
        assert o.grade(prefers_community_taxon=False) == expected
    assert rules.categories(o.idents, o.community())[o.idents[0].id] == MAVERICK


def test_identification_spec_opted_out_grade_after_disagreement_then_observer_agrees(tree: Tree) -> None:
    o = opted_out(tree, "s1", "s1")
    assert o.grade(prefers_community_taxon=False) == RESEARCH
    o.run("s2 s2")
    assert o.grade(prefers_community_taxon=False) == NEEDS_ID
    o.add("s2", own=True)                                     # replaces the observer's s1
    assert o.grade(prefers_community_taxon=False) == RESEARCH


# --- require_expert (the project's setting) ------------------------------------------------------

def test_require_expert_holds_research_until_an_expert_agrees(tree: Tree) -> None:
    o = obs(tree, "s1 s1")
    assert o.grade(require_expert=True) == NEEDS_ID
    o.add("g1", expert=True)                              # an ancestor: not an agreement
    assert o.grade(require_expert=True) == NEEDS_ID
    o.add("ss1", expert=True)                             # a descendant of the community taxon: agrees
    assert (o.community_name(), o.grade(require_expert=True)) == ("s1", RESEARCH)


def test_require_expert_also_holds_genus_research_after_no_further_id(tree: Tree) -> None:
    o = obs(tree, "g1 g1")
    assert o.grade(votes=NO_FURTHER_ID, require_expert=True) == NEEDS_ID
    o.add("g1", expert=True)
    assert o.grade(votes=NO_FURTHER_ID, require_expert=True) == RESEARCH


def test_a_withdrawn_expert_identification_does_not_agree(tree: Tree) -> None:
    o = obs(tree, "s1 s1")
    expert = o.add("s1", expert=True)
    o.withdraw(expert.id)
    assert not rules.expert_agrees(o.idents, o.community())


# --- disagreement flag (identification_spec "disagreement") ---------------------------------------

def test_identification_spec_disagreement_flag(tree: Tree) -> None:
    def lineage(name: str) -> tuple[int, ...]:
        return (*tree.ancestry[tree[name]], tree[name])

    assert rules.disagreement_flag(lineage("s1"), None, None) is None                 # nothing to disagree with
    assert rules.disagreement_flag(lineage("Aves"), lineage("Calypte anna"), None) is False
    assert rules.disagreement_flag(lineage("Aves"), lineage("Calypte anna"), True) is True
    assert rules.disagreement_flag(lineage("s2"), lineage("s1"), None) is True        # implicit
    assert rules.disagreement_flag(lineage("ss1"), lineage("s1"), True) is False      # a descendant agrees


# --- properties that hold for any identifications ------------------------------------------------

NAMES = ["f", "g1", "g2", "s1", "s2", "ss1", "ss2", "s2ss1", "sf"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), st.booleans(), st.booleans()), min_size=0, max_size=12),
       st.sampled_from([1, 2]), st.randoms(use_true_random=False))
def test_community_taxon_is_the_finest_qualifying_node_in_any_order(
        picks: list[tuple[str, bool, bool]], weight: int, rnd: object) -> None:
    tree = make_tree()
    o = Obs(tree, weight)
    for name, disagree, expert in picks:
        o.add(name, disagreement=disagree or None, expert=expert)
    community = o.community()
    nodes = rules.community_nodes(o.idents, tree.rank_level, expert_weight=weight)
    qualifying = [n for n in nodes if n.cumulative > 1 and n.score > 2 / 3]
    current = [i for i in o.idents if i.current]
    if len(current) <= 1 or not qualifying:
        assert community.taxon_id is None
        return
    winner = next(n for n in nodes if n.taxon_id == community.taxon_id)
    assert winner.score > 2 / 3 and winner.cumulative > 1
    assert all(tree.rank_level[n.taxon_id] >= tree.rank_level[winner.taxon_id] for n in qualifying)
    shuffled = list(o.idents)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert rules.community_taxon(shuffled, tree.rank_level, expert_weight=weight) == community
    found = rules.categories(o.idents, community)
    assert set(found) == {i.id for i in o.idents}
    assert all(found[i.id] != MAVERICK for i in o.idents if community.taxon_id in i.lineage)


# --- the worked example of docs/identification.md ------------------------------------------------

def test_the_documented_worked_example(tree: Tree) -> None:
    for weight in (1, 2):
        o = Obs(tree, weight)
        o.add("Calypte", own=True)
        for name in ("Calypte anna", "Calypte anna"):
            o.add(name)
        o.add("Calypte costae", expert=weight == 2)
        assert (o.community_name(), o.grade()) == ("Calypte", NEEDS_ID)
        assert o.categories() == [IMPROVING, LEADING, LEADING, LEADING]
        o.add("Calypte anna")
        if weight == 1:
            assert o.community() == Community(tree["Calypte anna"], 0.75, 3, 1, 0)
            assert (o.taxon_name(), o.grade()) == ("Calypte anna", RESEARCH)
            assert o.categories() == [IMPROVING, IMPROVING, SUPPORTING, MAVERICK, SUPPORTING]
            assert o.grade(require_expert=True) == NEEDS_ID
        else:
            assert (o.community_name(), o.grade()) == ("Calypte", NEEDS_ID)
            assert o.categories() == [IMPROVING, LEADING, LEADING, LEADING, LEADING]
            assert o.grade(votes=NO_FURTHER_ID, require_expert=True) == RESEARCH
