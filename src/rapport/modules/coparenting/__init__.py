"""Co-parenting (seed 000): pairing two parents into a shared room, mediation that helps
keep the tone civil, the children's and the co-parent's details, shared tasks, and topic
threads found in the conversation. Schema `coparenting`."""
