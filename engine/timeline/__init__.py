"""One request's timeline, by correlation id: every row it wrote, in time order."""
