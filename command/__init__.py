"""The command centre: app assembly, incident intake, the console API and pages."""
