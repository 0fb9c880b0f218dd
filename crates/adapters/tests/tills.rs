//! Store till exports: good, bad and repeated files.

mod common;

use common::{Books, bytes, channel, fixture, location, sku};
use stockline_adapters::tills::{LineError, TillLine, TillsReader};
use stockline_domain::{DocumentKind, Payload, Price, ReturnDisposition, Verdict};

fn read(body: &[u8]) -> (Vec<TillLine>, Vec<LineError>, Vec<String>) {
    let reader = TillsReader::new(body, channel("pos")).expect("header");
    let ignored = reader.ignored_columns().to_vec();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for row in reader {
        match row {
            Ok(line) => good.push(line),
            Err(error) => bad.push(error),
        }
    }
    (good, bad, ignored)
}

#[test]
fn a_good_file_becomes_till_sales_with_line_numbers() {
    let body = fixture("tills/good.csv");
    let (good, bad, ignored) = read(&body);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(ignored, vec!["register".to_owned()]);
    assert_eq!(
        good.iter().map(|l| l.line).collect::<Vec<_>>(),
        vec![2, 3, 5]
    );
    let first = &good[0].event;
    assert_eq!(first.channel, channel("pos"));
    assert_eq!(first.location, Some(location("store-lyon")));
    assert_eq!(first.sku, Some(sku("MUG-BLUE")));
    assert_eq!(
        first.document.as_ref().map(|d| (d.kind, d.id.to_string())),
        Some((DocumentKind::TillReceipt, "R-0001".into()))
    );
    assert_eq!(
        first.payload,
        Payload::TillSale {
            quantity: 2,
            price: Some(Price {
                unit_minor: 1_450,
                currency: "EUR".into()
            })
        }
    );
    assert_eq!(first.occurred_at.to_rfc3339(), "2025-03-14T09:02:00+00:00");
    // A time without offset is UTC; no price columns, no price.
    assert_eq!(
        good[2].event.occurred_at.to_rfc3339(),
        "2025-03-14T15:30:00+00:00"
    );
    assert_eq!(
        good[2].event.payload,
        Payload::TillSale {
            quantity: 1,
            price: None
        }
    );

    let mut books = Books::new();
    let events: Vec<_> = good.iter().map(|l| l.event.clone()).collect();
    books.apply_ok(&events);
    assert_eq!(books.q("MUG-BLUE", "store-lyon").on_hand, 7);
    assert_eq!(books.q("LAMP-BRASS", "store-lyon").on_hand, 9);

    // Imported again: the same events, all duplicates, nothing changes.
    let (again, _, _) = read(&body);
    let again: Vec<_> = again.into_iter().map(|l| l.event).collect();
    assert_eq!(bytes(&again), bytes(&events));
    assert!(books.apply(&again).iter().all(|v| *v == Verdict::Duplicate));
    assert_eq!(books.q("MUG-BLUE", "store-lyon").on_hand, 7);
}

#[test]
fn returns_carry_their_disposition_and_origin() {
    let (good, bad, _) = read(&fixture("tills/returns.csv"));
    assert!(bad.is_empty(), "{bad:?}");
    let payloads: Vec<_> = good.iter().map(|l| l.event.payload.clone()).collect();
    assert_eq!(
        payloads[0],
        Payload::Returned {
            quantity: 1,
            disposition: ReturnDisposition::Restock,
            sold_by_channel: Some(channel("web")),
            original_order: Some(
                stockline_domain::OrderId::new("shopify-5784467603614").expect("id")
            ),
            price: None,
        }
    );
    assert!(matches!(
        payloads[1],
        Payload::Returned {
            disposition: ReturnDisposition::Damaged,
            ..
        }
    ));
    assert!(matches!(
        payloads[2],
        Payload::Returned {
            disposition: ReturnDisposition::Discard,
            ..
        }
    ));
    let mut books = Books::new();
    let events: Vec<_> = good.into_iter().map(|l| l.event).collect();
    books.apply_ok(&events);
    assert_eq!(books.q("LAMP-BRASS", "store-lyon").on_hand, 11);
    let mug = books.q("MUG-BLUE", "store-lyon");
    assert_eq!((mug.on_hand, mug.damaged), (11, 1));
}

#[test]
fn bad_rows_are_reported_with_their_line_and_the_rest_imported() {
    let (good, bad, _) = read(&fixture("tills/bad.csv"));
    assert_eq!(good.iter().map(|l| l.line).collect::<Vec<_>>(), vec![2, 8]);
    let lines: Vec<(u64, &str)> = bad.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[0].0, 3);
    assert!(lines[0].1.contains("sku"), "{}", lines[0].1);
    assert_eq!(lines[1].0, 4);
    assert!(lines[1].1.contains("time"), "{}", lines[1].1);
    assert_eq!(lines[2].0, 5);
    assert!(lines[2].1.contains("quantity"), "{}", lines[2].1);
    assert_eq!(lines[3].0, 6);
    assert!(lines[3].1.contains("kind"), "{}", lines[3].1);
    assert_eq!(lines[4].0, 7);
    assert!(lines[4].1.contains("currency"), "{}", lines[4].1);
    assert_eq!(bad[0].to_string().split(':').next(), Some("line 3"));
}

#[test]
fn headers_are_checked_and_rows_validated() {
    let missing = TillsReader::new(
        &b"receipt_id,line,time,location,sku,quantity\n"[..],
        channel("pos"),
    );
    let error = missing.err().expect("missing kind");
    assert_eq!(error.line, 1);
    assert!(error.message.contains("kind"), "{}", error.message);
    let twice = TillsReader::new(
        &b"receipt_id,line,time,location,sku,quantity,kind,SKU\n"[..],
        channel("pos"),
    );
    assert!(twice.is_err());

    // Columns in any order, any case; a sale may not say how a return is disposed.
    let body = b"KIND,Quantity,sku,location,time,line,receipt_id,disposition\n\
                 sale,1,MUG-BLUE,store-lyon,2025-03-14T10:00:00Z,1,R-9,damaged\n\
                 return,1,MUG-BLUE,store-lyon,2025-03-14T10:00:00Z,2,R-9,\n\
                 return,1,MUG-BLUE,store-lyon,2025-03-14T10:00:00Z,0,R-9,\n\
                 return,1,MUG-BLUE,store-lyon,2025-03-14T10:00:00Z,3,R-9,broken\n\
                 return,1,MUG-BLUE\n";
    let (good, bad, _) = read(body);
    assert_eq!(good.iter().map(|l| l.line).collect::<Vec<_>>(), vec![3]);
    assert_eq!(
        bad.iter().map(|e| e.line).collect::<Vec<_>>(),
        vec![2, 4, 5, 6]
    );
}

#[test]
fn event_ids_depend_on_location_receipt_and_line_only() {
    let row = |location: &str, receipt: &str, line: u32, quantity: u32| {
        format!(
            "receipt_id,line,time,location,sku,quantity,kind\n{receipt},{line},2025-03-14T10:00:00Z,{location},MUG-BLUE,{quantity},sale\n"
        )
    };
    let id = |text: String| read(text.as_bytes()).0[0].event.event_id;
    let base = id(row("store-lyon", "R-1", 1, 1));
    // A corrected quantity keeps the id (the first import stands)...
    assert_eq!(base, id(row("store-lyon", "R-1", 1, 2)));
    // ...another line, receipt or store is another event.
    assert_ne!(base, id(row("store-lyon", "R-1", 2, 1)));
    assert_ne!(base, id(row("store-lyon", "R-2", 1, 1)));
    assert_ne!(base, id(row("store-paris", "R-1", 1, 1)));
}
