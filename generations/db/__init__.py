"""Database helpers below the models' users: queries compiled once, the SQLite writer lock."""
