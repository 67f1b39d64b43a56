"""Routing and money: which provider serves a job (several routes per model, in the
operator's order, with a circuit breaker per provider, key pools and in-flight limits),
what it costs in US dollars (the price table, estimates, the billed figure) and the model
aliases. Below the writes of core/, above the engines of rendering/."""
