"""An attacker with every published table: recover hidden figures by subtraction, chaining what it learns.

It knows the additive structure (a region is the sum of its group cells; the nation is the sum of its regions;
a cell of all waves is the sum of the same cell in each wave) and the survey's logic: an unconditional group
question is answered by everyone, so its cells sum exactly to the total; a question asked only of returnees leaves
the community members (the `returned` table's community cell) as its remainder. Respondents without a region are
unknown to it (unless told that everyone has one). Whatever it works out becomes known and is used again, until
nothing more comes out. It works on pairs (n, gap_n): a group's size and how many of them are in gap.

- `recover`: one release's tables; which suppressed cells it computes back.
- `learn_over_time`: two releases; what it learns about the people who completed between them, from the figures
  that changed (a figure it sees unchanged it takes as "nobody new", the strongest assumption it can make);
  `small_groups` keeps what it got right about fewer than min_cell people: their answers are out.

Tables are `{wave (None: all waves): {cell: published cell}}` with cells keyed as
tests.gaps.synthetic.published_cells keys them: (grouping, region, value, dimension, indicator, overall).
"""

from __future__ import annotations

from collections.abc import Mapping

from surveys.definition import Definition

Cell = tuple  # (grouping, region, value, dimension, indicator, overall)
Var = tuple  # (wave, *cell), or ("rest", ...) for the unpublished remainder of one sum
Value = tuple[int, int]  # (n, gap_n)


def recover(definition: Definition, published: dict[Cell, dict], truth: dict[Cell, dict],
            everyone_has_a_region: bool = False) -> dict[Cell, int]:
    """Suppressed cells of one table (all waves) whose figures (n and gap_n) the attacker computes, with that n.

    Only cells somebody is in count (working out that an empty cell is empty is not a disclosure), and only what it
    computes from figures that are current: figures kept from an earlier release make its arithmetic wrong, and
    right only by chance (what such arithmetic does tell, about the people who came since, is `learn_over_time`'s).
    With `everyone_has_a_region` the attacker also knows that the regions add up to the nation exactly.
    """
    found = recover_tables(definition, {None: published}, {None: truth}, everyone_has_a_region)
    return {cell[1:]: value for cell, value in found.items()}


def recover_tables(definition: Definition, tables: Mapping[int | None, dict[Cell, dict]],
                   truths: Mapping[int | None, dict[Cell, dict]],
                   everyone_has_a_region: bool = False) -> dict[Var, int]:
    """`recover` over several tables at once (all waves and each wave): {(wave, *cell): n}."""
    known: dict[Var, Value] = {}
    secret: set[Var] = set()
    current: set[Var] = set()
    for wave, published in tables.items():
        for cell, figures in published.items():
            var = (wave, *cell)
            if figures["suppressed"]:
                secret.add(var)
                continue
            known[var] = (figures["n"], figures["gap_n"])
            truth = truths.get(wave, {}).get(cell, {})
            if known[var] == (truth.get("n", 0), truth.get("gap_n", 0)):
                current.add(var)
    derived = _solve(_equations(definition, tables, everyone_has_a_region), known, secret, current)
    found = {}
    for var, value in derived.items():
        truth = truths.get(var[0], {}).get(var[1:], {})
        if var in secret and var in current and truth.get("n", 0) > 0:
            assert value == (truth["n"], truth["gap_n"]), var  # the attacker's arithmetic is right
            found[var] = value[0]
    return found


def learn_over_time(definition: Definition, before: Mapping[int | None, dict[Cell, dict]],
                    after: Mapping[int | None, dict[Cell, dict]],
                    everyone_has_a_region: bool = False) -> dict[Var, Value]:
    """Every change (n, gap_n) between two releases that the attacker sees or works out, for any cell or remainder.

    A change of 1 .. min_cell - 1 people is a small group whose answers it has learnt.
    """
    known: dict[Var, Value] = {}
    hidden: set[Var] = set()
    for wave, published in after.items():
        for cell, now in published.items():
            then = before.get(wave, {}).get(cell)
            var = (wave, *cell)
            if now["suppressed"] or then is None or then["suppressed"]:
                hidden.add(var)
            else:
                known[var] = (now["n"] - then["n"], now["gap_n"] - then["gap_n"])
    seen = dict(known)
    seen.update(_solve(_equations(definition, after, everyone_has_a_region), known, hidden))
    return seen


def small_groups(changes: dict[Var, Value], before: Mapping[int | None, dict[Cell, dict]],
                 after: Mapping[int | None, dict[Cell, dict]], min_cell: int) -> dict[Var, Value]:
    """Changes the attacker saw or worked out that are true (equal to the change of the true figures, `before` and
    `after` as tests.gaps.synthetic.expected_cells counts them) and concern 1 .. min_cell - 1 people.

    A change worked out from figures kept from an earlier release is a mix of several groups' changes; unless it
    happens to be the true change of the cell, it tells nothing definite about anyone.
    """
    def truth(table: dict[Cell, dict], cell: Cell) -> Value:
        figures = table.get(cell, {})
        return figures.get("n", 0), figures.get("gap_n", 0)

    def true_change(var: Var) -> Value:
        if var[0] == "rest":  # national minus its regions: the respondents without a region
            wave, grouping, _, value, dimension, indicator, overall = var[1:]
            totals = []
            for table in (after.get(wave, {}), before.get(wave, {})):
                n, gap = truth(table, var[2:])
                for key in table:
                    if key[0] == grouping and key[1] is not None and key[2:] == (value, dimension, indicator, overall):
                        n, gap = n - table[key]["n"], gap - table[key]["gap_n"]
                totals.append((n, gap))
            return totals[0][0] - totals[1][0], totals[0][1] - totals[1][1]
        now, then = truth(after.get(var[0], {}), var[1:]), truth(before.get(var[0], {}), var[1:])
        return now[0] - then[0], now[1] - then[1]

    return {var: value for var, value in changes.items()
            if 0 < abs(value[0]) < min_cell and value == true_change(var)}


def _equations(definition: Definition, tables: Mapping[int | None, dict[Cell, dict]],
               everyone_has_a_region: bool) -> list[tuple[Var, list[Var], Var | None]]:
    """(total, parts, remainder): total = sum(parts) + remainder (None: nothing)."""
    groups = {q.id: ([c.value for c in q.choices] or ["yes", "no"], q.when) for q in definition.questions if q.group}
    regions = [r.code for r in definition.region_question.regions]
    measures = {(key[3], key[4], key[5]) for published in tables.values() for key in published}
    found: list[tuple[Var, list[Var], Var | None]] = []
    for wave in tables:
        for dimension, indicator, overall in measures:
            for place in [*regions, None]:
                total = (wave, None, place, None, dimension, indicator, overall)
                for question_id, (values, when) in groups.items():
                    parts = [(wave, question_id, place, v, dimension, indicator, overall) for v in values]
                    if when is None:
                        remainder = None
                    elif "returnee" in when:
                        remainder = (wave, "returned", place, "community", dimension, indicator, overall)
                    else:
                        continue
                    found.append((total, parts, remainder))
            for question_id, (values, _) in [(None, ([None], None)), *groups.items()]:
                for v in values:
                    total = (wave, question_id, None, v, dimension, indicator, overall)
                    parts = [(wave, question_id, place, v, dimension, indicator, overall) for place in regions]
                    found.append((total, parts, None if everyone_has_a_region else ("rest", *total)))
    waves = [wave for wave in tables if wave is not None]
    if None in tables and waves:
        for cell in tables[None]:
            found.append(((None, *cell), [(wave, *cell) for wave in waves], None))
    return found


def _solve(equations, known: dict[Var, Value], unknown: set[Var], current: set[Var] | None = None) -> dict[Var, Value]:
    """Values of unknowns (and remainders) that single-unknown equations give, chained until nothing more comes.

    `current` (updated in place): the known figures that are true now; a value worked out from those only joins it.
    """
    values = dict(known)
    derived: dict[Var, Value] = {}
    current = current if current is not None else set()

    def value(var: Var) -> Value | None:
        if var in values:
            return values[var]
        if var[0] != "rest" and var not in unknown:
            return (0, 0)  # not published at all: nobody there
        return None

    progress = True
    while progress:
        progress = False
        for total, parts, remainder in equations:
            terms = [total, *parts, *([remainder] if remainder is not None else [])]
            missing = [t for t in terms if value(t) is None]
            if len(missing) != 1:
                continue
            target = missing[0]
            n = gap = 0
            for term in terms:
                if term == target:
                    continue
                sign = 1 if term != total else -1
                term_n, term_gap = value(term)
                n, gap = n + sign * term_n, gap + sign * term_gap
            if target != total:
                n, gap = -n, -gap
            values[target] = derived[target] = (n, gap)
            if all(term in current or term == target or (term[0] != "rest" and term not in values)
                   for term in terms):
                current.add(target)
            progress = True
    return derived
