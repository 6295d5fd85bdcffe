//! Permission levels and the resource types grants name, with MLflow's names and meanings.

use crate::{Error, Result};

/// What a principal may do with a resource. The order of the variants is MLflow's priority:
/// a higher level includes everything below it. [`Permission::Deny`] is a veto, never folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// An explicit refusal that wins over every positive grant it meets.
    Deny,
    /// Nothing at all.
    NoPermissions,
    /// See the resource and everything in it.
    Read,
    /// Read, and use it (MLflow: invoke); for Cairn the same as read plus predictions.
    Use,
    /// Change the resource: log to runs, set tags, create versions.
    Edit,
    /// Everything, including deleting the resource and granting permissions on it.
    Manage,
}

impl Permission {
    /// Every level, in MLflow's order of names.
    pub const ALL: [Permission; 6] = [
        Permission::Read,
        Permission::Use,
        Permission::Edit,
        Permission::Manage,
        Permission::NoPermissions,
        Permission::Deny,
    ];

    /// MLflow's name of the level.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Deny => "DENY",
            Permission::NoPermissions => "NO_PERMISSIONS",
            Permission::Read => "READ",
            Permission::Use => "USE",
            Permission::Edit => "EDIT",
            Permission::Manage => "MANAGE",
        }
    }

    /// Parses MLflow's name, with MLflow's message for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        Permission::ALL.into_iter().find(|p| p.as_str() == text).ok_or_else(|| {
            let names: Vec<String> = Permission::ALL.iter().map(|p| format!("'{}'", p.as_str())).collect();
            Error::invalid(format!("Invalid permission '{text}'. Valid permissions are: ({})", names.join(", ")))
        })
    }

    /// The level's rank among positive levels; [`Permission::Deny`] ranks below everything.
    fn rank(self) -> i8 {
        match self {
            Permission::Deny => -1,
            Permission::NoPermissions => 0,
            Permission::Read => 1,
            Permission::Use => 2,
            Permission::Edit => 3,
            Permission::Manage => 4,
        }
    }

    /// Whether this level includes `needed`. Nothing includes [`Permission::Deny`] or
    /// [`Permission::NoPermissions`] as a need: asking for them makes no sense.
    pub fn allows(self, needed: Permission) -> bool {
        self != Permission::Deny && needed.rank() > 0 && self.rank() >= needed.rank()
    }

    /// The higher of two levels (for folding grants that do not veto).
    pub fn max(self, other: Permission) -> Permission {
        if self.rank() >= other.rank() { self } else { other }
    }

    /// Whether a grant on a single resource may carry this level: MLflow refuses
    /// `NO_PERMISSIONS` there, because an absent grant already says it.
    pub fn grantable_on_resource(self) -> bool {
        self != Permission::NoPermissions
    }
}

/// The kinds of resource a grant or role permission can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// An experiment, by id; its runs, logged models and artifacts follow it.
    Experiment,
    /// A registered model, by name; its versions and aliases follow it.
    RegisteredModel,
    /// The whole server (MLflow's workspace slot): only `*`, only USE or MANAGE.
    Workspace,
}

impl ResourceType {
    /// MLflow's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Experiment => "experiment",
            ResourceType::RegisteredModel => "registered_model",
            ResourceType::Workspace => "workspace",
        }
    }

    /// Parses a type name. MLflow knows more types (prompts, scorers, gateway resources) that
    /// Cairn does not have; naming them is refused rather than stored and never enforced.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "experiment" => Ok(ResourceType::Experiment),
            "registered_model" => Ok(ResourceType::RegisteredModel),
            "workspace" => Ok(ResourceType::Workspace),
            other => Err(Error::invalid(format!(
                "Invalid resource type '{other}'. Valid resource types are: ('experiment', 'registered_model', \
                 'workspace')"
            ))),
        }
    }

    /// Checks that `permission` may be granted on this type, with MLflow's messages.
    pub fn check_grantable(self, permission: Permission) -> Result<()> {
        match self {
            ResourceType::Workspace if !matches!(permission, Permission::Use | Permission::Manage) => {
                Err(Error::invalid(format!(
                    "Invalid permission '{}' for resource_type='workspace'. Workspace-wide grants accept only: \
                     ('MANAGE', 'USE').",
                    permission.as_str()
                )))
            }
            ResourceType::Workspace => Ok(()),
            _ if !permission.grantable_on_resource() => Err(Error::invalid(format!(
                "Invalid permission '{}' for resource_type='{}'. Resource-level grants accept only: \
                 ('DENY', 'EDIT', 'MANAGE', 'READ', 'USE').",
                permission.as_str(),
                self.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// Checks a pattern: `*`, or for resource types an id; the workspace slot takes only `*`.
    pub fn check_pattern(self, pattern: &str) -> Result<()> {
        if pattern.is_empty() {
            return Err(Error::invalid("resource_pattern must not be empty"));
        }
        if self == ResourceType::Workspace && pattern != "*" {
            return Err(Error::invalid(format!(
                "Invalid resource_pattern '{pattern}' for resource_type='workspace'. This resource type supports \
                 only wildcard ('*') grants."
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_include_the_ones_below() {
        assert!(Permission::Manage.allows(Permission::Edit));
        assert!(Permission::Edit.allows(Permission::Read));
        assert!(!Permission::Read.allows(Permission::Edit));
        assert!(!Permission::Use.allows(Permission::Edit));
        assert!(!Permission::Deny.allows(Permission::Read));
        assert!(!Permission::NoPermissions.allows(Permission::Read));
        assert!(!Permission::Manage.allows(Permission::NoPermissions), "needing nothing is not a need");
        assert_eq!(Permission::Read.max(Permission::Edit), Permission::Edit);
    }

    #[test]
    fn names_round_trip_and_bad_names_get_mlflows_message() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()).unwrap(), p);
        }
        let e = Permission::parse("WRITE").unwrap_err().to_string();
        assert!(e.starts_with("Invalid permission 'WRITE'. Valid permissions are: ('READ', 'USE'"), "{e}");
        assert!(ResourceType::parse("prompt").is_err());
    }

    #[test]
    fn grantability_follows_mlflow() {
        assert!(ResourceType::Experiment.check_grantable(Permission::Deny).is_ok());
        assert!(ResourceType::Experiment.check_grantable(Permission::NoPermissions).is_err());
        assert!(ResourceType::Workspace.check_grantable(Permission::Read).is_err());
        assert!(ResourceType::Workspace.check_grantable(Permission::Manage).is_ok());
        assert!(ResourceType::Workspace.check_pattern("3").is_err());
        assert!(ResourceType::RegisteredModel.check_pattern("churn").is_ok());
    }
}
