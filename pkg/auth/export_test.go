package auth

// CacheLen is the number of cached principals.
func (a *Authenticator) CacheLen() int { return a.cache.len() }
