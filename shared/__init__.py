"""What every QualityCity service uses: settings, database, events, outbox, bus, auth, errors."""
