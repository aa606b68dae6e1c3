"""Administrative efficiency supervision (行政效能电子监察): approval items and cases against their
legal time limits, stage rules, yellow and red cards."""
