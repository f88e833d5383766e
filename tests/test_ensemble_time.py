"""An ensemble's training time counts each seed's timed run: a busy member's quiet re-run stands in for it."""

import numpy as np
import pandas as pd

from analysis import tables


def test_an_ensembles_minutes_use_the_quiet_rerun_of_a_busy_member():
    # seeds 0-2 form one ensemble; seed 1's member ran busy (600 s) and was re-run quietly (400 s)
    group = pd.DataFrame(dict(seed=[0, 1, 1, 2], train_wall_s=[300.0, 600.0, 400.0, 350.0],
                              ensemble=["e", "e", None, "e"], ensemble_accuracy=[0.9, 0.9, np.nan, 0.9]))
    timed = group.drop(index=1)  # the busy run is not timed
    found = tables._ensembles(group, timed)
    assert found["ensembles"] == 1 and found["ensemble_accuracy"] == 0.9
    assert found["ensemble_train_wall_s"] == 300.0 + 400.0 + 350.0


def test_an_ensemble_with_a_seed_never_timed_has_no_time():
    group = pd.DataFrame(dict(seed=[0, 1, 2], train_wall_s=[300.0, 600.0, 350.0], ensemble=["e"] * 3,
                              ensemble_accuracy=[0.9] * 3))
    assert np.isnan(tables._ensembles(group, group.drop(index=1))["ensemble_train_wall_s"])
