//! What a binding is, besides its parties: how it was made (the API
//! resource it shows as) and who holds its X.

/// How a binding was made, which decides the API resource it shows as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Kind {
    /// From the command line or a CSV import.
    #[default]
    Cli,
    /// An AXB binding from the API.
    Axb,
    /// A flow-1 identifier: an X from the pool (AX).
    Digits,
    /// A flow-1 identifier: a random SIP user part (AX).
    Token,
}

impl Kind {
    /// Stable name for the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Cli => "cli",
            Kind::Axb => "axb",
            Kind::Digits => "digits",
            Kind::Token => "token",
        }
    }

    /// Parses [`Kind::as_str`].
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Cli, Kind::Axb, Kind::Digits, Kind::Token]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// How a tenant came to hold an X in the registry of numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Claim {
    /// Added to the tenant's pool.
    Pool,
    /// A token identifier's X, the tenant's for good.
    Token,
    /// The operator's, from the command line, while a binding uses it.
    Cli,
}

impl Claim {
    /// Stable name for the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Claim::Pool => "pool",
            Claim::Token => "token",
            Claim::Cli => "cli",
        }
    }

    /// Parses [`Claim::as_str`].
    pub fn parse(s: &str) -> Option<Claim> {
        [Claim::Pool, Claim::Token, Claim::Cli]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}
