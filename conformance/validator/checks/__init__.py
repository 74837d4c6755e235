"""The individual checks of the validator, one concern per module; each returns or reports `Issue`s."""
