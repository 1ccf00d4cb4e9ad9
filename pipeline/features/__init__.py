"""Feature stages: run a registered extractor over every video's cached inputs into its own cache."""
