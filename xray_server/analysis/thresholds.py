"""Every number the analysis rules use, each with the reason for its value.

`explain` and `baseline` read them from here only, so that a reader can see in one place what the
rules take for "usual", "unusual" and "starved", and a change of one is a change of one line.
"""

from __future__ import annotations

from xray_server.schemas.queries import DEFAULT_BASELINE_RUNS

# --- The baseline -------------------------------------------------------------------------------

# How many earlier runs of the pipeline a run is held to (the API's default, defined with its
# query): 200 runs make a tail share of 1% two runs (one run is noise), and cost about 20 ms to
# read and judge (bench query).
BASELINE_RUNS = DEFAULT_BASELINE_RUNS
# A step seen in fewer earlier runs than this has no "usual": its numbers are not judged (its
# errors and missing metrics still are). A tail that one run in ten reaches legitimately holds
# five values in fifty runs, the fewest that fill it; in twenty, it looks like a cluster apart.
MIN_BASELINE = 50
# A run that any source labelled with this is left out of every baseline: a run judged bad is not
# what the step usually does, however many such runs there are.
BAD_LABEL = "bad"

# --- The spread of a numeric feature --------------------------------------------------------------

# The biweight midvariance's tuning constant, in median absolute deviations: values further out
# weigh nothing, so up to half of the baseline may share one bug without widening the spread.
BIWEIGHT_C = 9.0
# When half the values or more tie at the median (no MAD), the spread is this quantile of the
# distances to the median, in standard deviations of normal data (0.935 is that quantile's value
# for a normal distribution), so that the values that do differ still count as the usual spread.
TIED_QUANTILE = 0.65
TIED_TO_SD = 0.935
# Floors of the spread, on each feature's scale, so that a metric that never varies is not
# "infinitely" far for any change: a quarter of a factor e for counts and durations (log scale),
# 3 points for shares, and a millionth of the usual size for other metrics.
SCALE_FLOOR = {"log": 0.25, "ratio": 0.03, "linear": 1e-6}

# --- When a value is unusual ----------------------------------------------------------------------

# The robust distance past which a value can be unusual, in spreads, by class: a step's decisions
# (ratios, reasons, scores) and durations from 4; volumes (counts of candidates, which spread by
# factors and differ by kind of input) from 8.
MIN_Z = {"decision": 4.0, "time": 4.0, "volume": 8.0}
# A distance of 3 is mild: never a finding, but enough to say "the output moved too".
MILD_Z = 3.0
# A minority categorical value is corroborated when its own step's output moved at least this far
# (with the minimum effect) while its input did not: the step changed what it used and what it
# produced together.
WITH_OUTPUT_Z = 2.0
# Tail share: of the earlier runs, the share whose value was at least as extreme, on the same side
# of the median (ties count). A value that more than this share of earlier runs reached is what the
# step does, however far it is from the median: a select that chooses from 2 in one run in ten, a
# score that hard inputs pull down in one run in five. Above a bug's usual share of runs (10 to 30%)
# so that a bug already in the baseline is still seen.
MAX_TAIL_SHARE = 0.35
# A cluster apart from the core: between the value and the core's edge (the quantile that
# MAX_TAIL_SHARE of the values lie beyond, so a bug's cluster is beyond it), the widest stretch
# with no earlier value in it is at least this share of the distance. A bug's values form a cluster
# of their own (a gap, then the rest); a legitimate long tail is filled all the way in (hard inputs
# spread from the worst to the usual), so its values are never apart, however far out they are.
GAP_SHARE = 0.25
# With few earlier values between the value and the core, wide gaps come by chance (the widest of
# k random values is about ln(k + 1) / (k + 1) of the stretch): the gap needed is this many times
# that, when it is more than GAP_SHARE (fewer than about 30 values between).
GAP_CHANCE = 2.0

# --- The minimum effect ---------------------------------------------------------------------------

# Counts must at least halve or double, and move by 2 or more: 1 against 2 is not a finding.
COUNT_FACTOR = 2.0
COUNT_GAP = 2.0
# Durations must triple and be 50 ms longer: scheduling noise is not a slow step.
DURATION_FACTOR = 3.0
DURATION_GAP_MS = 50.0
# Shares (drop ratios, reason shares, custom metrics within [0, 1]) must move by 0.2.
SHARE_GAP = 0.2
# Other custom metrics must move by a quarter of their usual size, and by their p10-p90 range.
CUSTOM_SHARE_OF_USUAL = 0.25

# --- Categorical features -------------------------------------------------------------------------

# A value this rare among earlier steps is unusual.
RARE_CATEGORY_SHARE = 0.02
# A value a minority had (at most WEAK_SHARE) while one value dominates (at least MODE_SHARE) is
# weakly unusual: alone it is how a step that routes between two models looks.
MODE_SHARE = 0.6
WEAK_SHARE = 0.4

# --- Patterns ---------------------------------------------------------------------------------

# The significance a pattern must reach after the Bonferroni correction: one window of random
# failures in twenty shows a pattern by chance, at most.
ALPHA = 0.05
# A pattern must at least double the risk of a run being bad: a value on most runs, bad or not,
# explains nothing, however significant.
MIN_RISK_RATIO = 2.0
# A pair must be this much more precise than the better of its two values: two attributes
# together, not one attribute and a bystander.
MIN_PAIR_GAIN = 0.15

# --- Reading a run ------------------------------------------------------------------------------

# Input at or below this share of its usual size starves a step: what it does is an effect.
STARVED = 0.1
# Missing metrics are a finding unless at least this share of earlier steps missed them too (then
# they are how the step is instrumented, not what went wrong in this run).
VIOLATION_SHARE = 0.5
# An empty output is explained by its input when, among the earlier runs whose step before it
# handed on an alike number (the nearest by its percentile: a tenth of them, and at least five),
# more than MAX_TAIL_SHARE came out empty too: a filter given nothing that could pass did its job.
# A tenth follows the baseline's size: in a short history, the few runs with nothing to pass are
# not outvoted by the many nearest to them that had something.
ALIKE_SHARE = 0.1
MIN_ALIKE = 5

# --- Recall lost to a truncated search ------------------------------------------------------------

# A search truncated at its limit is named for a run's bad end only when, among the earlier runs,
# those whose same search was truncated ended that way significantly more often than the others
# (one-sided Fisher at the patterns' ALPHA, and at least MIN_RISK_RATIO as often): without the test,
# every truncated run of a pipeline whose entities often have no match would be blamed on its cap.
# The test is one per explained run (no correction), and it only ever picks between "the cap" and
# "nothing upstream shows why" for a run that already has a symptom.
RECALL_ALPHA = ALPHA
# When at most this share of the earlier runs whose search was not truncated ended like this one,
# the end is no usual thing without the cap, and the cap is named without waiting for enough runs
# to test (a rare category's share).
RARE_END_SHARE = RARE_CATEGORY_SHARE
# ... and only when at least this many earlier runs were not truncated: none of 20 is still one
# chance in eight for an end that one run in ten reaches; a search that is nearly always truncated
# has too few uncut runs to say an uncut search never gets there.
MIN_UNCUT_RUNS = 20
# The truncated earlier runs that ended like this one must be at least this many: two runs are an
# anecdote, whatever the test says of them.
MIN_RECALL_RUNS = 3
# A search truncated at its limit is named on the earlier runs alone: nothing of the step is unusual
# in the run. The runs it would name wrongly are the truncated runs that end so anyway (an entity
# with no match), as often as the uncut runs do: the share of truncated runs times the uncut runs'
# rate of ending so, of every earlier run. That share must be at most this: the goal's budget of
# correct runs accused (1%). A pipeline whose correct runs often end so (the record-linkage
# pipeline: a tenth of entities have no match, a fifth of blocks are truncated, 2% of its runs)
# gets no named cap; one whose uncut runs almost never end so does.
RECALL_WRONG_SHARE = 0.01

# --- Recall lost to a search that found worse matches -----------------------------------------

# A search's or a rank's own best score (a similarity, not a count) fell far enough down its tail
# to be why a later step had nothing good to work with when, besides the decisions' distance, at
# most this share of the earlier runs were as low: a rare category's share. Hard inputs (typos)
# put a search lower than usual in one run in ten, never this rarely; "apart" is not enough here,
# since a legitimate segment (typos score 80 to 96 where the core ties at 100) is a cluster apart
# too. Only read for a run with a symptom that nothing at or before it explains.
FELL_RARE_SHARE = RARE_CATEGORY_SHARE
