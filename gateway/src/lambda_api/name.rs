//! The `FunctionName` of an Invoke request, in every form Lambda accepts: a name
//! (`orders`), a name with a qualifier (`orders:$LATEST`), a partial ARN
//! (`123456789012:function:orders`) or a full one
//! (`arn:aws:lambda:eu-west-3:123456789012:function:orders[:qualifier]`), plus the
//! `Qualifier` query parameter. Pure: no registry here.

/// The only version a function has here: every deploy replaces it, as `$LATEST` does.
pub const LATEST: &str = "$LATEST";

/// What an Invoke request names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// The function's name (or, in a cluster gateway, its `{name}.{namespace}` key).
    pub function: String,
    /// The version or alias asked for, if any.
    pub qualifier: Option<String>,
}

/// Why a `FunctionName` cannot name a function.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("FunctionName is empty")]
    Empty,
    #[error("FunctionName {0:?} is not a function name or a Lambda function ARN")]
    Malformed(String),
    #[error("the FunctionName qualifier {0:?} and the Qualifier parameter {1:?} differ")]
    Conflicting(String, String),
}

/// `raw` (percent-decoded) and the request's `Qualifier` parameter, if any.
pub fn parse(raw: &str, qualifier_param: Option<&str>) -> Result<Named, NameError> {
    if raw.is_empty() {
        return Err(NameError::Empty);
    }
    let malformed = || NameError::Malformed(raw.to_owned());
    let parts: Vec<&str> = raw.split(':').collect();
    let (function, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, qualifier] => (*name, Some(*qualifier)),
        [_account, "function", name] => (*name, None),
        [_account, "function", name, qualifier] => (*name, Some(*qualifier)),
        [
            "arn",
            _partition,
            "lambda",
            _region,
            _account,
            "function",
            name,
        ] => (*name, None),
        [
            "arn",
            _partition,
            "lambda",
            _region,
            _account,
            "function",
            name,
            qualifier,
        ] => (*name, Some(*qualifier)),
        _ => return Err(malformed()),
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 170
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '$'))
    };
    if !valid(function) || function.contains('$') || qualifier.is_some_and(|q| !valid(q)) {
        return Err(malformed());
    }
    let qualifier = match (qualifier, qualifier_param.filter(|q| !q.is_empty())) {
        (Some(a), Some(b)) if a != b => {
            return Err(NameError::Conflicting(a.to_owned(), b.to_owned()));
        }
        (Some(q), _) | (None, Some(q)) => Some(q.to_owned()),
        (None, None) => None,
    };
    Ok(Named {
        function: function.to_owned(),
        qualifier,
    })
}

/// The ARN Lambda would give `function` (qualified when asked with a qualifier), for
/// messages: what an SDK user recognises.
pub fn arn(region: &str, named: &Named) -> String {
    let base = format!(
        "arn:{}:lambda:{region}:{}:function:{}",
        faas_api::sqs::partition(region),
        faas_api::contract::LOCAL_ACCOUNT,
        named.function
    );
    match &named.qualifier {
        Some(q) => format!("{base}:{q}"),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(function: &str, qualifier: Option<&str>) -> Named {
        Named {
            function: function.into(),
            qualifier: qualifier.map(str::to_owned),
        }
    }

    #[test]
    fn every_form_lambda_accepts_names_the_function() {
        for (raw, param, want) in [
            ("orders", None, named("orders", None)),
            ("orders", Some("$LATEST"), named("orders", Some("$LATEST"))),
            ("orders:$LATEST", None, named("orders", Some("$LATEST"))),
            ("orders:prod", None, named("orders", Some("prod"))),
            ("123456789012:function:orders", None, named("orders", None)),
            (
                "123456789012:function:orders:7",
                Some(""),
                named("orders", Some("7")),
            ),
            (
                "arn:aws:lambda:eu-west-3:123456789012:function:orders",
                None,
                named("orders", None),
            ),
            (
                "arn:aws-cn:lambda:cn-north-1:123456789012:function:orders:$LATEST",
                Some("$LATEST"),
                named("orders", Some("$LATEST")),
            ),
            // A cluster gateway's key.
            ("orders.team-a", None, named("orders.team-a", None)),
        ] {
            assert_eq!(parse(raw, param), Ok(want), "{raw}");
        }
    }

    #[test]
    fn garbage_and_contradictions_are_refused_naming_them() {
        assert_eq!(parse("", None), Err(NameError::Empty));
        for raw in [
            "a:b:c",
            "arn:aws:s3:::bucket",
            "arn:aws:lambda:eu-west-3:123456789012:layer:x",
            "orders/../x",
            "or ders",
            "$LATEST",
            "orders:",
            ":orders",
            &"x".repeat(200),
        ] {
            assert!(
                matches!(parse(raw, None), Err(NameError::Malformed(_))),
                "{raw}"
            );
        }
        assert_eq!(
            parse("orders:prod", Some("7")),
            Err(NameError::Conflicting("prod".into(), "7".into()))
        );
    }

    #[test]
    fn the_arn_is_lambdas() {
        assert_eq!(
            arn("eu-west-3", &named("orders", Some("$LATEST"))),
            format!(
                "arn:aws:lambda:eu-west-3:{}:function:orders:$LATEST",
                faas_api::contract::LOCAL_ACCOUNT
            )
        );
    }
}
