"""The command centre: incident intake, contingency plans, severity raises, surge triage, decision
support, statistics, the console's API and socket, and the console page."""
