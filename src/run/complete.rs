//! When a resource type's records are all in: from the type each listed file is expected to
//! hold ([`crate::source::Input::file_types`]), the file after which no more records of a
//! type can come. The collector tells the sinks as it passes those files, so they close a
//! type's files while the workers are still busy with later ones instead of closing (and
//! syncing) every file at the end of the run (issue 6 item 7).
//!
//! A file whose name names no resource type, or a Bundle file that is unbundled, may hold
//! any type: every type stays open until it has been passed. The hints come from names, so
//! a misnamed file can still bring records of a type after it was declared complete; the
//! sinks then open a new file for them (`part-00001`, `.00001.ndjson`), and nothing is lost.

use crate::fhir::{resource_type_index, TypeIdx};

/// The completion points of a run's input, passed in listing order.
#[derive(Debug)]
pub struct Completion {
    /// (the last file that may hold the type, the type), sorted by file.
    after: Vec<(usize, TypeIdx)>,
    /// How many of `after` were handed out.
    next: usize,
}

impl Completion {
    /// The completion points for files of the hinted types (by listing index);
    /// `unbundle` when Bundle entries become resources of any type.
    pub fn new(file_types: &[Option<TypeIdx>], unbundle: bool) -> Self {
        let bundle = resource_type_index("Bundle");
        let open = |t: &Option<TypeIdx>| t.is_none() || (unbundle && *t == bundle);
        let last_open = file_types.iter().rposition(open).unwrap_or(0);
        // Each hinted type's last file (later files overwrite earlier ones).
        let last: std::collections::BTreeMap<TypeIdx, usize> = file_types
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some(((*t)?, i)))
            .collect();
        let mut after: Vec<(usize, TypeIdx)> = last
            .into_iter()
            .map(|(t, i)| (i.max(last_open), t))
            .collect();
        after.sort_unstable();
        Completion { after, next: 0 }
    }

    /// The types that became complete now that a record of file `file` is being
    /// dispatched, so every file listed before it has been passed (in ascending type
    /// order within a file; each type is handed out once).
    pub fn passed(&mut self, file: usize) -> Vec<TypeIdx> {
        let start = self.next;
        while self.next < self.after.len() && self.after[self.next].0 < file {
            self.next += 1;
        }
        self.after[start..self.next]
            .iter()
            .map(|&(_, t)| t)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(name: &str) -> Option<TypeIdx> {
        resource_type_index(name)
    }

    fn names(v: Vec<TypeIdx>) -> Vec<&'static str> {
        v.into_iter().map(crate::fhir::resource_type_name).collect()
    }

    #[test]
    fn issue_6_item_7_a_type_is_complete_after_its_last_file() {
        // Claim, Observation-1, Observation-2, Patient
        let files = [
            ty("Claim"),
            ty("Observation"),
            ty("Observation"),
            ty("Patient"),
        ];
        let mut c = Completion::new(&files, false);
        assert_eq!(names(c.passed(0)), Vec::<&str>::new());
        assert_eq!(names(c.passed(1)), ["Claim"]);
        assert_eq!(names(c.passed(2)), Vec::<&str>::new());
        assert_eq!(names(c.passed(2)), Vec::<&str>::new());
        assert_eq!(names(c.passed(3)), ["Observation"]);
        // Patient is left to the end of the run (finish).
        assert_eq!(names(c.passed(3)), Vec::<&str>::new());
    }

    #[test]
    fn issue_6_item_7_a_file_of_unknown_content_keeps_every_type_open() {
        let files = [ty("Claim"), None, ty("Observation"), ty("Patient")];
        let mut c = Completion::new(&files, false);
        assert_eq!(names(c.passed(1)), Vec::<&str>::new());
        assert_eq!(names(c.passed(2)), ["Claim"]);
        // Skipping files (none of their lines dispatched) still passes them.
        assert_eq!(names(c.passed(4)), ["Observation", "Patient"]);
    }

    #[test]
    fn issue_6_item_7_unbundled_bundles_may_hold_any_type() {
        let files = [ty("Claim"), ty("Bundle"), ty("Patient")];
        let mut c = Completion::new(&files, true);
        assert_eq!(names(c.passed(1)), Vec::<&str>::new());
        assert_eq!(names(c.passed(2)), ["Bundle", "Claim"]);
        let mut c = Completion::new(&files, false);
        assert_eq!(names(c.passed(1)), ["Claim"]);
        assert_eq!(names(c.passed(2)), ["Bundle"]);
    }
}
