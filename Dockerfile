# Placeholder: the provider's container image arrives with the packaging issue.
