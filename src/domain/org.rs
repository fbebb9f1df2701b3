//! The org tree (总行 → 分行 → 支行 → 网点) and its materialized path (`/1/4/9/`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Level of an org in the bank's hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// 总行 head office: the root.
    HeadOffice,
    /// 分行 branch.
    Branch,
    /// 支行 sub-branch.
    SubBranch,
    /// 网点 outlet.
    Outlet,
}

impl OrgKind {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HeadOffice => "head_office",
            Self::Branch => "branch",
            Self::SubBranch => "sub_branch",
            Self::Outlet => "outlet",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::HeadOffice,
            Self::Branch,
            Self::SubBranch,
            Self::Outlet,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// A child must sit strictly lower than its parent (a sub-branch may hang directly under head office,
    /// as 直属支行 do); only a head office may be a root.
    pub fn may_have_parent(self, parent: Option<OrgKind>) -> bool {
        match parent {
            None => self == Self::HeadOffice,
            Some(p) => self > p,
        }
    }
}

/// The materialized path of a child of `parent_path` with id `id`.
pub fn child_path(parent_path: Option<&str>, id: i64) -> String {
    format!("{}{id}/", parent_path.unwrap_or("/"))
}

/// True when `path` is `ancestor` itself or lies below it.
pub fn is_within(path: &str, ancestor: &str) -> bool {
    path.starts_with(ancestor)
}

/// The org ids along a path, root first (`/1/4/9/` → `[1, 4, 9]`).
pub fn path_ids(path: &str) -> Vec<i64> {
    path.split('/').filter_map(|s| s.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_nest_downwards_only() {
        assert!(OrgKind::HeadOffice.may_have_parent(None));
        assert!(!OrgKind::Branch.may_have_parent(None));
        assert!(OrgKind::Branch.may_have_parent(Some(OrgKind::HeadOffice)));
        assert!(OrgKind::SubBranch.may_have_parent(Some(OrgKind::HeadOffice)));
        assert!(!OrgKind::Branch.may_have_parent(Some(OrgKind::Branch)));
        assert!(!OrgKind::HeadOffice.may_have_parent(Some(OrgKind::Branch)));
        assert!(OrgKind::Outlet.may_have_parent(Some(OrgKind::SubBranch)));
    }

    #[test]
    fn paths() {
        assert_eq!(child_path(None, 1), "/1/");
        assert_eq!(child_path(Some("/1/4/"), 9), "/1/4/9/");
        assert!(is_within("/1/4/9/", "/1/4/"));
        assert!(is_within("/1/4/", "/1/4/"));
        assert!(!is_within("/1/40/", "/1/4/"));
        assert_eq!(path_ids("/1/4/9/"), vec![1, 4, 9]);
        for k in [
            OrgKind::HeadOffice,
            OrgKind::Branch,
            OrgKind::SubBranch,
            OrgKind::Outlet,
        ] {
            assert_eq!(OrgKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(OrgKind::parse("region"), None);
    }
}
