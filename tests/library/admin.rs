//! The staff sessions admin against every backend: {SQLite, PostgreSQL} × {db, cached_db}.

use std::time::Duration;

use console_sessions::admin::StateFilter;
use console_sessions::admin::{
    Actor, AdminQuery, HistoryQuery, SearchTerm, SessionAdmin, SortColumn,
};
use console_sessions::device::DeviceCategory;
use console_sessions::geo::Place;
use console_sessions::sessions::{now, EndCause, EndedBy, PublicId, TokenHash};
use console_sessions::testing::{sample_record, TestDatabase};
use console_sessions::{Backend, SessionBackend, SessionConfig, SessionEngine};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1";

struct Ctx {
    engine: SessionEngine,
    admin: SessionAdmin,
    test_db: TestDatabase,
    ada: i64,
    bob: i64,
}

struct Seeded {
    public_id: PublicId,
    hash: TokenHash,
}

impl Ctx {
    async fn new(backend: Backend, session_backend: SessionBackend) -> Self {
        let test_db = TestDatabase::new(backend).await.unwrap();
        let engine = SessionEngine::new(
            test_db.db.clone(),
            SessionConfig {
                backend: session_backend,
                ..SessionConfig::default()
            },
        );
        let admin = SessionAdmin::new(engine.clone());
        let ada = test_db.insert_user("Ada", true).await.unwrap();
        let bob = test_db.insert_user("bob", false).await.unwrap();
        Self {
            engine,
            admin,
            test_db,
            ada,
            bob,
        }
    }

    async fn seed(
        &self,
        user_id: Option<i64>,
        ip: &str,
        user_agent: &str,
        country: Option<&str>,
        age: Duration,
    ) -> Seeded {
        let (mut record, token) = sample_record(user_id);
        record.ip = Some(ip.parse().unwrap());
        record.user_agent = Some(user_agent.to_owned());
        record.place = Place {
            country_code: country.map(str::to_owned),
            city: None,
        };
        record.created_at = now() - age;
        self.engine.store().create(&record).await.unwrap();
        Seeded {
            public_id: record.public_id,
            hash: token.hash(),
        }
    }

    fn actor(&self) -> Actor {
        Actor {
            user_id: self.ada,
            username: "Ada".into(),
            ip: Some("192.0.2.7".parse().unwrap()),
        }
    }

    async fn ids(&self, query: AdminQuery) -> Vec<PublicId> {
        let page = self.admin.search(&query).await.unwrap();
        assert!(page.total_exact);
        assert_eq!(page.total as usize, page.rows.len());
        page.rows.into_iter().map(|r| r.record.public_id).collect()
    }
}

fn sorted(mut ids: Vec<PublicId>) -> Vec<String> {
    let mut ids: Vec<String> = ids.drain(..).map(String::from).collect();
    ids.sort();
    ids
}

fn search(text: &str) -> AdminQuery {
    AdminQuery {
        search: SearchTerm::parse(text),
        descending: true,
        ..AdminQuery::default()
    }
}

async fn search_finds_addresses_by_cidr_prefix_and_exact_match(ctx: Ctx) {
    let a = ctx
        .seed(Some(ctx.ada), "10.1.2.3", FIREFOX, None, Duration::ZERO)
        .await;
    let b = ctx
        .seed(Some(ctx.bob), "10.1.200.9", IPHONE, None, Duration::ZERO)
        .await;
    let c = ctx
        .seed(Some(ctx.bob), "10.2.0.1", FIREFOX, None, Duration::ZERO)
        .await;
    let d = ctx
        .seed(None, "2001:db8::5", FIREFOX, None, Duration::ZERO)
        .await;
    let e = ctx
        .seed(None, "10.15.0.1", FIREFOX, None, Duration::ZERO)
        .await;
    // The same rows whether the address index drives or every row is checked (broad searches).
    for admin in [
        ctx.admin.clone(),
        ctx.admin.clone().with_search_index_limit(0),
    ] {
        let ids = |text: &str| {
            let admin = admin.clone();
            let query = search(text);
            async move {
                let page = admin.search(&query).await.unwrap();
                assert!(page.total_exact);
                assert_eq!(page.total as usize, page.rows.len());
                sorted(page.rows.into_iter().map(|r| r.record.public_id).collect())
            }
        };
        assert_eq!(
            ids("10.1").await,
            sorted(vec![
                a.public_id.clone(),
                b.public_id.clone(),
                e.public_id.clone()
            ])
        );
        assert_eq!(
            ids("10.1.").await,
            sorted(vec![a.public_id.clone(), b.public_id.clone()])
        );
        // As written: 10.1.2.x, 10.1.20–29.x and 10.1.200–255.x.
        assert_eq!(
            ids("10.1.2").await,
            sorted(vec![a.public_id.clone(), b.public_id.clone()])
        );
        assert_eq!(ids("10.1.2.").await, sorted(vec![a.public_id.clone()]));
        assert_eq!(ids("2001:db").await, sorted(vec![d.public_id.clone()]));
        assert_eq!(ids("2001:db8::5").await, sorted(vec![d.public_id.clone()]));
        // `::` in a prefix is matched as text.
        assert_eq!(ids("2001:db8::5:").await, Vec::<String>::new());
        assert_eq!(
            ids("10.1.0.0/16").await,
            sorted(vec![a.public_id.clone(), b.public_id.clone()])
        );
        assert!(ids("10.1.2.3.").await.is_empty());
    }
    assert_eq!(
        sorted(ctx.ids(search("10.1.0.0/16")).await),
        sorted(vec![a.public_id.clone(), b.public_id.clone()])
    );
    assert_eq!(ctx.ids(search("10.1.2.3")).await, vec![a.public_id.clone()]);
    assert_eq!(
        sorted(ctx.ids(search("10.")).await),
        sorted(vec![a.public_id, b.public_id, c.public_id, e.public_id])
    );
    assert_eq!(ctx.ids(search("2001:db8::/32")).await, vec![d.public_id]);
    assert!(ctx.ids(search("192.168.0.0/16")).await.is_empty());
}

async fn search_finds_people_and_user_agents(ctx: Ctx) {
    let a = ctx
        .seed(Some(ctx.ada), "10.0.0.1", FIREFOX, None, Duration::ZERO)
        .await;
    let b = ctx
        .seed(Some(ctx.bob), "10.0.0.2", IPHONE, None, Duration::ZERO)
        .await;
    ctx.seed(None, "10.0.0.3", "curl/8", None, Duration::ZERO)
        .await;
    assert_eq!(ctx.ids(search("ADA")).await, vec![a.public_id.clone()]);
    let everyone_checked = ctx.admin.clone().with_search_index_limit(0);
    let page = everyone_checked.search(&search("ADA")).await.unwrap();
    assert_eq!(
        page.rows
            .into_iter()
            .map(|r| r.record.public_id)
            .collect::<Vec<_>>(),
        vec![a.public_id.clone()]
    );
    // insert_user gives each user `<name>@example.test`.
    assert_eq!(
        ctx.ids(search("bob@example")).await,
        vec![b.public_id.clone()]
    );
    assert_eq!(ctx.ids(search("ua:iphone")).await, vec![b.public_id]);
    assert_eq!(ctx.ids(search("ua:firefox/128")).await, vec![a.public_id]);
    assert!(ctx.ids(search("nobody")).await.is_empty());
    // LIKE wildcards are text, not patterns.
    assert!(ctx.ids(search("%")).await.is_empty());
}

async fn filters_narrow_by_state_owner_country_device_and_age(ctx: Ctx) {
    let london = ctx
        .seed(
            Some(ctx.ada),
            "81.2.69.1",
            FIREFOX,
            Some("GB"),
            Duration::from_secs(3600),
        )
        .await;
    let phone = ctx
        .seed(
            Some(ctx.bob),
            "89.160.20.1",
            IPHONE,
            Some("SE"),
            Duration::from_secs(10 * 86_400),
        )
        .await;
    let expired = ctx
        .seed(
            Some(ctx.bob),
            "89.160.20.2",
            IPHONE,
            Some("SE"),
            Duration::ZERO,
        )
        .await;
    ctx.test_db
        .execute(&format!(
            "UPDATE sessions SET expires_at = 1 WHERE public_id = '{}'",
            expired.public_id
        ))
        .await
        .unwrap();

    let all = |state| AdminQuery {
        state,
        ..AdminQuery::default()
    };
    assert_eq!(ctx.ids(all(StateFilter::Active)).await.len(), 2);
    assert_eq!(
        ctx.ids(all(StateFilter::Expired)).await,
        vec![expired.public_id.clone()]
    );
    assert_eq!(ctx.ids(all(StateFilter::All)).await.len(), 3);
    let mine = AdminQuery {
        user_id: Some(ctx.ada),
        ..AdminQuery::default()
    };
    assert_eq!(ctx.ids(mine).await, vec![london.public_id.clone()]);
    let sweden = AdminQuery {
        country: Some("se".into()),
        ..AdminQuery::default()
    };
    assert_eq!(ctx.ids(sweden).await, vec![phone.public_id.clone()]);
    let phones = AdminQuery {
        category: Some(DeviceCategory::Smartphone),
        state: StateFilter::All,
        ..AdminQuery::default()
    };
    assert_eq!(ctx.ids(phones).await.len(), 2);
    let this_week = AdminQuery {
        created_since: Some(now() - Duration::from_secs(7 * 86_400)),
        ..AdminQuery::default()
    };
    assert_eq!(ctx.ids(this_week).await, vec![london.public_id]);
}

async fn every_column_sorts_both_ways(ctx: Ctx) {
    ctx.seed(
        Some(ctx.bob),
        "10.0.0.9",
        IPHONE,
        Some("SE"),
        Duration::from_secs(60),
    )
    .await;
    ctx.seed(
        Some(ctx.ada),
        "10.0.0.1",
        FIREFOX,
        Some("GB"),
        Duration::from_secs(120),
    )
    .await;
    for column in SortColumn::ALL {
        for descending in [false, true] {
            let page = ctx
                .admin
                .search(&AdminQuery {
                    sort: column,
                    descending,
                    ..AdminQuery::default()
                })
                .await
                .unwrap();
            assert_eq!(page.rows.len(), 2, "{column:?}");
        }
    }
    let by_user = ctx
        .admin
        .search(&AdminQuery {
            sort: SortColumn::User,
            ..AdminQuery::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = by_user
        .rows
        .iter()
        .map(|r| r.username.clone().unwrap())
        .collect();
    assert_eq!(names, ["Ada", "bob"]);
    let by_ip = ctx
        .admin
        .search(&AdminQuery {
            sort: SortColumn::Ip,
            descending: true,
            ..AdminQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_ip.rows[0].record.ip.unwrap().to_string(), "10.0.0.9");
    assert_eq!(by_ip.rows[0].category, DeviceCategory::Smartphone);
    assert_eq!(by_ip.rows[1].category, DeviceCategory::Desktop);
}

async fn signing_out_selected_sessions_ends_them_everywhere_and_is_audited(ctx: Ctx) {
    let a = ctx
        .seed(Some(ctx.bob), "10.0.0.1", FIREFOX, None, Duration::ZERO)
        .await;
    let b = ctx
        .seed(Some(ctx.bob), "10.0.0.2", IPHONE, None, Duration::ZERO)
        .await;
    let keep = ctx
        .seed(Some(ctx.bob), "10.0.0.3", IPHONE, None, Duration::ZERO)
        .await;
    // Warm the cache (cached_db), so the sign-out must evict.
    for s in [&a, &b, &keep] {
        assert!(ctx
            .engine
            .store()
            .load(&s.hash, now())
            .await
            .unwrap()
            .is_some());
    }
    let unknown = PublicId::generate();
    let ended = ctx
        .admin
        .sign_out(
            &ctx.actor(),
            &[a.public_id.clone(), b.public_id.clone(), unknown],
        )
        .await
        .unwrap();
    assert_eq!(
        sorted(ended),
        sorted(vec![a.public_id.clone(), b.public_id.clone()])
    );
    for s in [&a, &b] {
        assert!(ctx
            .engine
            .store()
            .load(&s.hash, now())
            .await
            .unwrap()
            .is_none());
        if let Some(cache) = ctx.engine.cache() {
            assert!(!cache.is_cached(&s.hash));
        }
    }
    assert!(ctx
        .engine
        .store()
        .load(&keep.hash, now())
        .await
        .unwrap()
        .is_some());

    let log = ctx.admin.audit_log(10, 0).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].action, "sessions.sign_out");
    assert_eq!(log[0].actor_username, "Ada");
    assert_eq!(log[0].actor_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(
        sorted(
            log[0]
                .session_ids
                .iter()
                .map(|s| PublicId::parse(s).unwrap())
                .collect()
        ),
        sorted(vec![a.public_id, b.public_id])
    );
}

async fn signing_out_a_user_ends_all_their_sessions_and_the_log_outlives_them(ctx: Ctx) {
    let a = ctx
        .seed(Some(ctx.bob), "10.0.0.1", FIREFOX, None, Duration::ZERO)
        .await;
    let b = ctx
        .seed(Some(ctx.bob), "10.0.0.2", IPHONE, None, Duration::ZERO)
        .await;
    let other = ctx
        .seed(Some(ctx.ada), "10.0.0.3", IPHONE, None, Duration::ZERO)
        .await;
    ctx.engine.store().load(&a.hash, now()).await.unwrap();
    let ended = ctx
        .admin
        .sign_out_user(&ctx.actor(), ctx.bob, "bob")
        .await
        .unwrap();
    assert_eq!(ended.len(), 2);
    let history = ctx.engine.ended_sessions(ctx.bob, 10).await.unwrap();
    assert_eq!(history.len(), 2);
    for ended in history {
        assert_eq!(ended.reason, console_sessions::sessions::EndCause::Staff);
        assert_eq!(
            ended.by,
            Some(console_sessions::sessions::EndedBy::Staff(
                ctx.actor().user_id
            ))
        );
    }
    assert!(ctx
        .engine
        .store()
        .load(&a.hash, now())
        .await
        .unwrap()
        .is_none());
    assert!(ctx
        .engine
        .store()
        .load(&b.hash, now())
        .await
        .unwrap()
        .is_none());
    assert!(ctx
        .engine
        .store()
        .load(&other.hash, now())
        .await
        .unwrap()
        .is_some());
    // The user goes; the record of what was done to them stays.
    console_sessions::accounts::Accounts::new(
        ctx.test_db.db.clone(),
        ctx.engine.clone(),
        Default::default(),
    )
    .delete_user(ctx.bob)
    .await
    .unwrap();
    let log = ctx.admin.audit_log(10, 0).await.unwrap();
    assert_eq!(log[0].action, "user.sign_out_all");
    assert_eq!(log[0].target_user_id, Some(ctx.bob));
    assert_eq!(log[0].target_username.as_deref(), Some("bob"));
    assert_eq!(log[0].session_ids.len(), 2);
}

async fn details_show_the_owner_and_never_need_the_token(ctx: Ctx) {
    let a = ctx
        .seed(
            Some(ctx.ada),
            "10.0.0.1",
            IPHONE,
            Some("SE"),
            Duration::ZERO,
        )
        .await;
    let row = ctx.admin.get(&a.public_id).await.unwrap().unwrap();
    assert_eq!(row.username.as_deref(), Some("Ada"));
    assert_eq!(row.email.as_deref(), Some("ada@example.test"));
    assert_eq!(row.category, DeviceCategory::Smartphone);
    assert_eq!(row.record.place.country_code.as_deref(), Some("SE"));
    assert!(ctx
        .admin
        .get(&PublicId::generate())
        .await
        .unwrap()
        .is_none());
    assert_eq!(ctx.admin.countries().await.unwrap(), ["SE"]);
    for (ip, country) in [
        ("10.0.0.2", Some("GB")),
        ("10.0.0.3", None),
        ("10.0.0.4", Some("SE")),
    ] {
        ctx.seed(None, ip, FIREFOX, country, Duration::ZERO).await;
    }
    assert_eq!(ctx.admin.countries().await.unwrap(), ["GB", "SE"]);
}

suite!(on_every_database_and_store:
    search_finds_addresses_by_cidr_prefix_and_exact_match,
    search_finds_people_and_user_agents,
    filters_narrow_by_state_owner_country_device_and_age,
    every_column_sorts_both_ways,
    signing_out_selected_sessions_ends_them_everywhere_and_is_audited,
    signing_out_a_user_ends_all_their_sessions_and_the_log_outlives_them,
    details_show_the_owner_and_never_need_the_token,
    history_is_searched_by_person_address_device_country_reason_and_time,
    signing_out_everything_matching_a_search_goes_in_batches_and_is_audited_once,
);

async fn signing_out_everything_matching_a_search_goes_in_batches_and_is_audited_once(ctx: Ctx) {
    use console_sessions::seed::{seed, SeedPlan};
    let plan = SeedPlan {
        users: 40,
        sessions: 3000,
    };
    seed(&ctx.test_db.db, plan, |_| {}).await.unwrap();
    // The staff member's own session matches too, and is kept.
    let own = ctx
        .seed(
            Some(ctx.ada),
            "10.0.0.1",
            FIREFOX,
            Some("SE"),
            Duration::ZERO,
        )
        .await;
    ctx.engine.store().load(&own.hash, now()).await.unwrap();
    let swedish = AdminQuery {
        country: Some("SE".into()),
        ..AdminQuery::default()
    };
    let matching = ctx.admin.count_matching(&swedish).await.unwrap();
    assert!(matching > 100, "several batches: {matching}");
    let admin = ctx.admin.clone().with_matching_batch(40);
    let everyone = ctx
        .admin
        .count_matching(&AdminQuery::default())
        .await
        .unwrap();

    let reported = std::sync::Mutex::new(Vec::new());
    let ended = admin
        .sign_out_matching(
            &ctx.actor(),
            &swedish,
            Some(&own.public_id),
            "country SE",
            &|done| reported.lock().unwrap().push(done),
        )
        .await
        .unwrap();
    assert_eq!(ended, matching - 1);
    let reported = reported.into_inner().unwrap();
    assert!(
        reported.len() >= 2,
        "progress after every batch: {reported:?}"
    );
    assert!(reported.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(reported.last(), Some(&ended));
    assert_eq!(
        ctx.admin.count_matching(&swedish).await.unwrap(),
        1,
        "only the kept one"
    );
    assert!(ctx
        .engine
        .store()
        .load(&own.hash, now())
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        ctx.admin
            .count_matching(&AdminQuery::default())
            .await
            .unwrap(),
        everyone - ended,
        "nothing else ended"
    );
    // One audit line for the whole action; each ended session's history says staff did it.
    let log = ctx.admin.audit_log(10, 0).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].action, "sessions.sign_out_matching");
    assert_eq!(
        log[0].detail,
        format!("{ended} sessions matching country SE ended")
    );
    let staffed = ctx
        .admin
        .history(&HistoryQuery {
            reason: Some(EndCause::Staff),
            country: Some("SE".into()),
            ..HistoryQuery::default()
        })
        .await
        .unwrap();
    // Anonymous seeded sessions leave no history.
    assert!(
        staffed.total > 0 && staffed.total <= ended,
        "{}",
        staffed.total
    );
    // A search matching nothing ends nothing, and says so.
    let nobody = search("192.0.2.0/24");
    assert_eq!(
        ctx.admin
            .sign_out_matching(&ctx.actor(), &nobody, None, "192.0.2.0/24", &|_| {})
            .await
            .unwrap(),
        0
    );
}

async fn history_is_searched_by_person_address_device_country_reason_and_time(ctx: Ctx) {
    let staff = ctx
        .seed(
            Some(ctx.bob),
            "10.1.2.3",
            FIREFOX,
            Some("GB"),
            Duration::ZERO,
        )
        .await;
    let limit = ctx
        .seed(
            Some(ctx.bob),
            "10.9.0.1",
            IPHONE,
            Some("SE"),
            Duration::ZERO,
        )
        .await;
    let adas = ctx
        .seed(
            Some(ctx.ada),
            "2001:db8::5",
            FIREFOX,
            Some("GB"),
            Duration::ZERO,
        )
        .await;
    let _still_signed_in = ctx
        .seed(
            Some(ctx.bob),
            "10.1.9.9",
            FIREFOX,
            Some("GB"),
            Duration::ZERO,
        )
        .await;
    ctx.admin
        .sign_out(&ctx.actor(), std::slice::from_ref(&staff.public_id))
        .await
        .unwrap();
    ctx.engine
        .end_session(ctx.bob, &limit.public_id, EndCause::SessionLimit)
        .await
        .unwrap();
    ctx.engine
        .end_session(ctx.ada, &adas.public_id, EndCause::SignedOut)
        .await
        .unwrap();
    let found = |query: HistoryQuery| {
        let admin = ctx.admin.clone();
        async move {
            let page = admin.history(&query).await.unwrap();
            assert!(page.total_exact);
            assert_eq!(page.total as usize, page.rows.len());
            sorted(page.rows.into_iter().map(|r| r.ended.public_id).collect())
        }
    };
    let all = sorted(vec![
        staff.public_id.clone(),
        limit.public_id.clone(),
        adas.public_id.clone(),
    ]);
    assert_eq!(
        found(HistoryQuery::default()).await,
        all,
        "live sessions are not history"
    );
    let by = |text: &str| HistoryQuery {
        search: SearchTerm::parse(text),
        ..HistoryQuery::default()
    };
    assert_eq!(
        found(by("bob")).await,
        sorted(vec![staff.public_id.clone(), limit.public_id.clone()])
    );
    assert_eq!(
        found(by("10.1.0.0/16")).await,
        sorted(vec![staff.public_id.clone()])
    );
    assert_eq!(
        found(by("10.9.")).await,
        sorted(vec![limit.public_id.clone()])
    );
    assert_eq!(
        found(by("2001:db8::5")).await,
        sorted(vec![adas.public_id.clone()])
    );
    assert_eq!(
        found(by("ua:iphone")).await,
        sorted(vec![limit.public_id.clone()])
    );
    assert_eq!(
        found(HistoryQuery {
            reason: Some(EndCause::Staff),
            ..HistoryQuery::default()
        })
        .await,
        sorted(vec![staff.public_id.clone()])
    );
    assert_eq!(
        found(HistoryQuery {
            country: Some("gb".into()),
            user_id: Some(ctx.bob),
            ..HistoryQuery::default()
        })
        .await,
        sorted(vec![staff.public_id.clone()])
    );
    assert_eq!(
        found(HistoryQuery {
            category: Some(DeviceCategory::Smartphone),
            ..HistoryQuery::default()
        })
        .await,
        sorted(vec![limit.public_id.clone()])
    );
    let now = now();
    assert_eq!(
        found(HistoryQuery {
            ended_since: Some(now - Duration::from_secs(60)),
            ended_before: Some(now + Duration::from_secs(60)),
            ..HistoryQuery::default()
        })
        .await,
        all
    );
    assert!(found(HistoryQuery {
        ended_before: Some(now - Duration::from_secs(60)),
        ..HistoryQuery::default()
    })
    .await
    .is_empty());
    // Owners and who ended it come with each row.
    let page = ctx
        .admin
        .history(&HistoryQuery {
            reason: Some(EndCause::Staff),
            ..HistoryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.rows[0].username.as_deref(), Some("bob"));
    assert_eq!(page.rows[0].category, DeviceCategory::Desktop);
    assert_eq!(page.rows[0].ended.by, Some(EndedBy::Staff(ctx.ada)));
}
