"""The generation core: every write (services named `<entity>_<action>`), the lifecycle that
owns each status transition and its ledger effect, request validation, and the reports
pages read. The API, the dashboard and the jobs call it; it calls nothing above it."""
