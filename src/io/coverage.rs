//! What state each member is in, told to the simulator so a sweep can report which fault
//! kinds met which member states (a gap in what it explores then shows). Only the simulator
//! build keeps anything: elsewhere `note` is an empty function the compiler drops. Nothing
//! here feeds back into a member, so it cannot change a run.

/// A member state a fault can meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemberState {
    Leader,
    Follower,
    /// Campaigning, or asking for pre-votes.
    Candidate,
    Learner,
    SnapshotSending,
    SnapshotReceiving,
    /// A joint configuration is in force.
    MembershipChanging,
    /// The member's disk is full (its space reserve released, or writers wait for room).
    NoSpace,
}

impl MemberState {
    pub const ALL: [MemberState; 8] = [
        MemberState::Leader,
        MemberState::Follower,
        MemberState::Candidate,
        MemberState::Learner,
        MemberState::SnapshotSending,
        MemberState::SnapshotReceiving,
        MemberState::MembershipChanging,
        MemberState::NoSpace,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MemberState::Leader => "leader",
            MemberState::Follower => "follower",
            MemberState::Candidate => "candidate",
            MemberState::Learner => "learner",
            MemberState::SnapshotSending => "snapshot-sending",
            MemberState::SnapshotReceiving => "snapshot-receiving",
            MemberState::MembershipChanging => "membership-changing",
            MemberState::NoSpace => "nospace",
        }
    }

    #[cfg(madsim)]
    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// The raft roles, exactly one of which a member has at a time.
const ROLES: [MemberState; 4] = [
    MemberState::Leader,
    MemberState::Follower,
    MemberState::Candidate,
    MemberState::Learner,
];

#[cfg(madsim)]
thread_local! {
    /// Per simulated node: a simulation runs on one thread of its own.
    static STATES: std::cell::RefCell<std::collections::BTreeMap<madsim::task::NodeId, u16>> =
        const { std::cell::RefCell::new(std::collections::BTreeMap::new()) };
}

/// Asking for pre-votes: raft itself still calls the member a follower, so this is kept
/// apart from the raft role and shown as `Candidate`.
#[cfg(madsim)]
const PRE_CANDIDATE_BIT: u16 = 1 << 15;

/// The calling member is (`on`) or is no longer in `state`.
#[inline(always)]
pub fn note(state: MemberState, on: bool) {
    #[cfg(madsim)]
    set_bit(state.bit(), on);
    #[cfg(not(madsim))]
    {
        let _ = (state, on);
    }
}

/// The calling member asks for pre-votes (`on`), or has heard from a leader again.
#[inline(always)]
pub fn note_pre_candidate(on: bool) {
    #[cfg(madsim)]
    set_bit(PRE_CANDIDATE_BIT, on);
    #[cfg(not(madsim))]
    {
        let _ = on;
    }
}

#[cfg(madsim)]
fn set_bit(bit: u16, on: bool) {
    // Unit tests of the simulator build run members' code with no simulation around it.
    if madsim::runtime::Handle::try_current().is_err() {
        return;
    }
    let node = madsim::plugin::node();
    STATES.with(|states| {
        let mut states = states.borrow_mut();
        let bits = states.entry(node).or_default();
        if on {
            *bits |= bit;
        } else {
            *bits &= !bit;
        }
    });
}

/// The calling member's raft role is `role` and no other (`None`: it has stopped).
pub fn note_role(role: Option<MemberState>) {
    for other in ROLES {
        note(other, Some(other) == role);
    }
}

/// The calling member starts afresh: nothing from before a restart carries over.
pub fn member_started() {
    for state in MemberState::ALL {
        note(state, false);
    }
    note_pre_candidate(false);
}

/// The states simulated node `node` is in now (for the simulator).
#[cfg(madsim)]
pub fn states_of(node: madsim::task::NodeId) -> Vec<MemberState> {
    let mut bits = STATES.with(|states| states.borrow().get(&node).copied().unwrap_or(0));
    if bits & PRE_CANDIDATE_BIT != 0 {
        bits |= MemberState::Candidate.bit();
    }
    MemberState::ALL
        .into_iter()
        .filter(|state| bits & state.bit() != 0)
        .collect()
}
