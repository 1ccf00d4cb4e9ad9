"""Pictures of what a head attended to, and the self-contained HTML report of a head's runs."""
