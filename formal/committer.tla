--------------------------- MODULE committer ---------------------------
(***************************************************************************)
(* The orange_fast designated-committer protocol, for readers.            *)
(*                                                                         *)
(* This is the specification that src/orange_fast/session/committer.py   *)
(* implements and that formal/explore.py checks by explicit-state          *)
(* exploration of the REAL Python state machine (TLC cannot be installed  *)
(* on the build machines).  It is written to be read; it has been kept     *)
(* close to TLC's input language but has not been model-checked by TLC.   *)
(*                                                                         *)
(* Differences from the reference design's model: epochs carry a hash of  *)
(* their history (forks are visible); the log is sequenced and replayable  *)
(* (lost connections, catch-up, duplicates); commit + Welcome are one      *)
(* entry, appended only at the sequence number the committer expected      *)
(* (compare-and-append); the group is (re)created by the first waiting     *)
(* client in log order; members that lose their standing rejoin.          *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

Range(s) == {s[i] : i \in DOMAIN s}

CONSTANTS Clients,          \* e.g. {"a", "b", "c", "d"}
          NoOne

VARIABLES log,              \* the DS log: a sequence of entries
          cursor,           \* cursor[c]: entries delivered to c
          mls,              \* mls[c]: [gen, epoch, hash] or NoOne (c's MLS state)
          pending,          \* pending[c]: the entry c asked the DS to append, or NoOne
          up                \* set of running clients

Entry == [kind: {"joined", "left", "evicted", "kp", "create", "commit", "proposal", "rejected"},
          sender: Clients \cup {NoOne}, body: ANY]

(***************************************************************************)
(* The public view: a fold of the log, identical for every client.        *)
(***************************************************************************)
RECURSIVE Fold(_, _)
Init0 == [gen |-> 0, epoch |-> 0, hash |-> 0, members |-> << >>,
          stale |-> {}, waiting |-> << >>, updates |-> {}]

Live(v) == SelectSeq(v.members, LAMBDA m: m \notin v.stale)
Committer(v) == IF Len(Live(v)) > 0 THEN Head(Live(v)).client ELSE NoOne
Creator(v)   == IF Committer(v) = NoOne /\ Len(v.waiting) > 0
                THEN Head(v.waiting).client ELSE NoOne

Apply(v, e) ==
  CASE e.kind = "joined" -> v                                   \* presence only
    [] e.kind \in {"left", "evicted"} ->                        \* no-op for a lobby visitor
         [v EXCEPT !.waiting = SelectSeq(@, LAMBDA w: w.client # e.body),
                   !.stale   = @ \cup {m \in Range(v.members): m.client = e.body}]
    [] e.kind = "kp" ->                                         \* (re)join request
         [v EXCEPT !.waiting = Append(SelectSeq(@, LAMBDA w: w.client # e.sender),
                                      [client |-> e.sender, kp |-> e.body]),
                   !.stale   = @ \cup {m \in Range(v.members): m.client = e.sender}]
    [] e.kind = "create" /\ Creator(v) = e.sender ->            \* one group, by log order
         [gen |-> v.gen + 1, epoch |-> 0, hash |-> <<v.gen + 1, e.sender>>,
          members |-> << Head(v.waiting) >>, stale |-> {},
          waiting |-> Tail(v.waiting), updates |-> {}]
    [] e.kind = "proposal" /\ e.body.gen = v.gen /\ e.body.epoch = v.epoch
         /\ e.sender \in {m.client : m \in Range(Live(v))} /\ e.sender # Committer(v) ->
         [v EXCEPT !.updates = @ \cup {e.sender}]           \* committed by the next commit
    [] e.kind = "commit" /\ e.body.gen = v.gen /\ e.body.epoch = v.epoch
         /\ e.sender = Committer(v) ->                       \* only the designated committer
         [v EXCEPT !.epoch   = @ + 1,
                   !.hash    = <<@, e.body.adds, e.body.removes>>,   \* history hash
                   !.members = SelectSeq(@, LAMBDA m: m \notin e.body.removes) \o e.body.adds,
                   !.stale   = @ \ e.body.removes,
                   !.waiting = SelectSeq(@, LAMBDA w: w \notin Range(e.body.adds)),
                   !.updates = {}]
    [] OTHER -> v                                               \* stale/forged: ignored by all

Fold(v, s) == IF s = << >> THEN v ELSE Fold(Apply(v, Head(s)), Tail(s))
ViewOf(c) == Fold(Init0, SubSeq(log, 1, cursor[c]))
LogView   == Fold(Init0, log)

(***************************************************************************)
(* Client decisions, taken only when caught up and with nothing pending.  *)
(***************************************************************************)
Decide(c) ==
  LET v == ViewOf(c) IN
  /\ cursor[c] = Len(log) /\ pending[c] = NoOne /\ c \in up
  /\ \/ /\ mls[c] = NoOne /\ ~\E w \in Range(v.waiting): w.client = c      \* publish a KeyPackage
        /\ pending' = [pending EXCEPT ![c] = [kind |-> "kp", at |-> NoOne]]
     \/ /\ Creator(v) = c                                                 \* create the group
        /\ pending' = [pending EXCEPT ![c] = [kind |-> "create", at |-> Len(log) + 1]]
     \/ /\ Committer(v) = c /\ mls[c] # NoOne                             \* adds first, ...
        /\ Len(v.waiting) > 0
        /\ pending' = [pending EXCEPT ![c] = [kind |-> "commit", at |-> Len(log) + 1,
                                              adds |-> v.waiting, removes |-> {}]]
     \/ /\ Committer(v) = c /\ mls[c] # NoOne                             \* ... then removes
        /\ Len(v.waiting) = 0 /\ v.stale # {}
        /\ pending' = [pending EXCEPT ![c] = [kind |-> "commit", at |-> Len(log) + 1,
                                              adds |-> << >>, removes |-> v.stale]]
     \/ /\ Committer(v) = c /\ mls[c] # NoOne                             \* ... then proposals
        /\ Len(v.waiting) = 0 /\ v.stale = {} /\ v.updates # {}
        /\ pending' = [pending EXCEPT ![c] = [kind |-> "commit", at |-> Len(log) + 1,
                                              adds |-> << >>, removes |-> {}]]
  /\ UNCHANGED <<log, cursor, mls, up>>

\* The DS: compare-and-append.  A commit and its Welcome are ONE entry.
DSAppend(c) ==
  /\ pending[c] # NoOne
  /\ IF pending[c].at = NoOne \/ pending[c].at = Len(log) + 1
     THEN log' = Append(log, [kind |-> pending[c].kind, sender |-> c, body |-> pending[c]])
     ELSE UNCHANGED log                                          \* refused: stale view
  /\ pending' = [pending EXCEPT ![c] = NoOne]
  /\ UNCHANGED <<cursor, mls, up>>

\* Delivery of the next entry; a member whose MLS state is not at the entry's
\* (gen, epoch, hash) drops its state (fork / missed epoch) and will rejoin.
Deliver(c) ==
  /\ c \in up /\ cursor[c] < Len(log)
  /\ LET e == log[cursor[c] + 1]
         v == ViewOf(c)
         v2 == Apply(v, e)
     IN mls' = [mls EXCEPT ![c] =
                  IF e.kind = "commit" /\ v2 # v
                  THEN IF \/ (@ # NoOne /\ @.hash = v.hash /\ c \in {m.client : m \in Range(Live(v2))})
                          \/ (\E w \in Range(e.body.adds): w.client = c)
                       THEN [gen |-> v2.gen, epoch |-> v2.epoch, hash |-> v2.hash]
                       ELSE NoOne
                  ELSE IF e.kind = "create" /\ e.sender = c /\ v2 # v
                       THEN [gen |-> v2.gen, epoch |-> 0, hash |-> v2.hash]
                       ELSE IF @ # NoOne /\ c \notin {m.client : m \in Range(Live(v2))}
                            THEN NoOne ELSE @]
  /\ cursor' = [cursor EXCEPT ![c] = @ + 1]
  /\ UNCHANGED <<log, pending, up>>

\* Environment: crashes (state lost; sent requests may still land), lost
\* connections (pending request lost; the client resumes from its cursor),
\* evictions and leaves (server notices), lobby visitors.
Crash(c)   == /\ c \in up /\ up' = up \ {c}
              /\ UNCHANGED <<log, cursor, mls, pending>>
Restart(c) == /\ c \notin up /\ up' = up \cup {c}
              /\ cursor' = [cursor EXCEPT ![c] = 0] /\ mls' = [mls EXCEPT ![c] = NoOne]
              /\ UNCHANGED <<log, pending>>
Evict(c)   == /\ c \notin up
              /\ log' = Append(log, [kind |-> "evicted", sender |-> NoOne, body |-> c])
              /\ pending' = [pending EXCEPT ![c] = NoOne]
              /\ UNCHANGED <<cursor, mls, up>>
Lose(c)    == /\ pending' = [pending EXCEPT ![c] = NoOne]
              /\ UNCHANGED <<log, cursor, mls, up>>

Next == \E c \in Clients: Decide(c) \/ DSAppend(c) \/ Deliver(c)
                          \/ Crash(c) \/ Restart(c) \/ Evict(c) \/ Lose(c)

(***************************************************************************)
(* Properties (checked by formal/explore.py on the real code).            *)
(***************************************************************************)
Commits == {i \in 1..Len(log): log[i].kind = "commit"}

OneCommitPerEpoch ==                      \* no fork in the log
  \A i, j \in Commits: i # j => <<log[i].body.gen, log[i].body.epoch>>
                               # <<log[j].body.gen, log[j].body.epoch>>

EveryCommitAccepted ==                    \* compare-and-append: no stale commit lands
  \A i \in Commits: Apply(Fold(Init0, SubSeq(log, 1, i - 1)), log[i])
                    # Fold(Init0, SubSeq(log, 1, i - 1))

NobodyAddedTwice ==
  \A i, j \in Commits: i # j =>
     Range(log[i].body.adds) \cap Range(log[j].body.adds) = {}

NoApplyForOtherEpoch ==                   \* a member applies only a commit for its epoch
  \A c \in up: mls[c] # NoOne => mls[c].gen = ViewOf(c).gen /\ mls[c].epoch = ViewOf(c).epoch

\* Liveness under fairness (the server evicts crashed clients, connections come
\* back, the log is delivered): all running clients end in one group, at one
\* epoch and hash, with nothing pending.
Converged ==
  LET v == LogView IN
  /\ v.waiting = << >> /\ v.stale = {}
  /\ \A c \in up: mls[c] = [gen |-> v.gen, epoch |-> v.epoch, hash |-> v.hash]
  /\ {m.client : m \in Range(Live(v))} = up
Liveness == <>[]Converged
=============================================================================
