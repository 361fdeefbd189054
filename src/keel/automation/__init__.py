"""Continuous training: trigger -> retrain -> gates -> canary -> promote or roll back.

Policies are declared per deployment under ``[automate.NAME]`` in keel.toml
(or built in Python as :class:`~keel.automation.policy.Policy`); one pass of
:func:`~keel.automation.loop.run_once` moves each deployment one step along,
so cron, CI or ``keel automate daemon`` can drive it. Every action is audited
with its reason, figures and links (trigger -> pipeline run -> model version
-> deployment revision).
"""

from keel.automation.loop import Step, run_once
from keel.automation.policy import CanaryPlan, Policy, Trigger, policies

__all__ = ["CanaryPlan", "Policy", "Step", "Trigger", "policies", "run_once"]
