// Interop cases beside the seed scenario (scenario.mjs): the official RavenDB
// Node.js client (ravendb@7.2.6), unchanged, against a magpie server, for
// CRUD, attachments and access control by client certificate.
//
//   MAGPIE_URL            https://127.0.0.1:PORT
//   MAGPIE_CERT / _KEY    an admin (ClusterAdmin or Operator) certificate and
//                         its PKCS#1 key (e.g. DATA/certs/admin.pem, admin-key.pem)
//   MAGPIE_CA             CA that signed the server cert (e.g. DATA/certs/ca.pem)
//   MAGPIE_READ_CERT / _KEY      a ValidUser certificate with Read access to
//                                MAGPIE_DB (magpie certs create reader
//                                --clearance ValidUser --db interop:Read)
//   MAGPIE_NOACCESS_CERT / _KEY  a ValidUser certificate with no access to
//                                MAGPIE_DB (magpie certs create noaccess
//                                --clearance ValidUser)
//   MAGPIE_DB             optional: the database (default "interop"); created
//                         through the admin certificate when missing
//
// Prints PASS/FAIL per case and "CASES PASSED" at the end; exit code 0 =
// every case passed, 1 = a case failed, 2 = bad environment.

import fs from "node:fs";
import crypto from "node:crypto";
import assert from "node:assert/strict";
import {
    DocumentStore,
    CreateDatabaseOperation,
    GetDatabaseNamesOperation,
} from "ravendb";

function env(name) {
    const v = process.env[name];
    if (!v) {
        console.error(`missing environment variable ${name}`);
        process.exit(2);
    }
    return v;
}

function pem(certVar, keyVar) {
    const cert = fs.readFileSync(env(certVar), "utf8");
    const key = fs.readFileSync(env(keyVar), "utf8");
    // The client's PEM loader only extracts "RSA PRIVATE KEY" blocks and
    // otherwise silently sends no certificate (see scenario.mjs).
    if (!key.includes("-----BEGIN RSA PRIVATE KEY-----")) {
        console.error(`${keyVar} must be an RSA key in PKCS#1 PEM ('RSA PRIVATE KEY')`);
        process.exit(2);
    }
    return cert + "\n" + key;
}

const url = env("MAGPIE_URL").replace(/\/$/, "");
const caPem = fs.readFileSync(env("MAGPIE_CA"), "utf8");
const adminPem = pem("MAGPIE_CERT", "MAGPIE_KEY");
const readPem = pem("MAGPIE_READ_CERT", "MAGPIE_READ_KEY");
const noAccessPem = pem("MAGPIE_NOACCESS_CERT", "MAGPIE_NOACCESS_KEY");
const db = process.env.MAGPIE_DB || "interop";
const run = `${Date.now().toString(36)}${crypto.randomBytes(2).toString("hex")}`;

function newStore(certificate) {
    const s = new DocumentStore(url, db, { type: "pem", certificate, ca: caPem });
    s.initialize();
    return s;
}

let failures = 0;
async function check(name, fn) {
    const t0 = Date.now();
    try {
        await fn();
        console.log(`PASS ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
        failures++;
        console.log(`FAIL ${name}: ${e && e.name}: ${e && e.message}`);
    }
}

// rejectsWith awaits fn, which must throw an error whose name is one of
// names and whose message contains every string in says; it returns the
// error.
async function rejectsWith(fn, names, says) {
    let err;
    try {
        await fn();
    } catch (e) {
        err = e;
    }
    assert.ok(err, `no error; expected ${names.join(" or ")}`);
    assert.ok(names.includes(err.name), `got ${err.name}: ${err.message}; expected ${names.join(" or ")}`);
    for (const s of says) {
        assert.ok(err.message.includes(s), `${err.name} message lacks ${JSON.stringify(s)}: ${err.message}`);
    }
    console.log(`     (expected) ${err.name}: ${err.message.split("\n").filter(Boolean).slice(-1)[0]}`);
    return err;
}

class Product {
    constructor(name, price, tags) { this.name = name; this.price = price; this.tags = tags; }
}

function plain(entity) {
    const o = JSON.parse(JSON.stringify(entity));
    delete o["@metadata"];
    delete o.id;
    return o;
}

async function readAll(stream) {
    const chunks = [];
    for await (const c of stream) chunks.push(Buffer.from(c));
    return Buffer.concat(chunks);
}

const admin = newStore(adminPem);
const reader = newStore(readPem);
const noAccess = newStore(noAccessPem);
const stores = [admin, reader, noAccess];

const pid = `products/${run}`;
const seedId = `products/${run}-seed`;

try {
    await check(`database ${db} exists (created through the admin certificate when missing)`, async () => {
        let names = await admin.maintenance.server.send(new GetDatabaseNamesOperation(0, 1024));
        if (!names.includes(db)) {
            await admin.maintenance.server.send(new CreateDatabaseOperation({ databaseName: db }));
            names = await admin.maintenance.server.send(new GetDatabaseNamesOperation(0, 1024));
        }
        assert.ok(names.includes(db), `${db} not in ${JSON.stringify(names)}`);
    });

    // --- CRUD ---------------------------------------------------------
    let firstCV;
    await check("CRUD: store and load back", async () => {
        const s = admin.openSession();
        await s.store(new Product("Widget ✓", 9.5, ["a", "b"]), pid);
        await s.saveChanges();
        const s2 = admin.openSession();
        const p = await s2.load(pid, Product);
        assert.ok(p instanceof Product, "not revived as Product");
        assert.deepEqual(plain(p), { name: "Widget ✓", price: 9.5, tags: ["a", "b"] });
        const md = s2.advanced.getMetadataFor(p);
        assert.equal(md["@id"], pid);
        assert.equal(md["@collection"], "Products");
        firstCV = s2.advanced.getChangeVectorFor(p);
        assert.ok(typeof firstCV === "string" && firstCV.length > 0, "no change vector");
    });

    await check("CRUD: update with the current change vector (optimistic concurrency)", async () => {
        const s = admin.openSession();
        s.advanced.useOptimisticConcurrency = true;
        const p = await s.load(pid, Product);
        p.price = 11;
        await s.saveChanges();
        const cv = s.advanced.getChangeVectorFor(p);
        assert.ok(cv && cv !== firstCV, `change vector not advanced: ${firstCV} -> ${cv}`);
        const p2 = await admin.openSession().load(pid, Product);
        assert.equal(p2.price, 11);
    });

    await check("CRUD: update with a stale change vector is refused (ConcurrencyException)", async () => {
        const s = admin.openSession();
        await s.store(new Product("stale", 1, []), pid, { changeVector: firstCV });
        await rejectsWith(() => s.saveChanges(), ["ConcurrencyException"], []);
        const p = await admin.openSession().load(pid, Product);
        assert.equal(p.price, 11, "a stale write changed the document");
    });

    await check("CRUD: delete, then load gives null", async () => {
        const s = admin.openSession();
        await s.delete(pid);
        await s.saveChanges();
        assert.equal(await admin.openSession().load(pid), null);
    });

    await check("CRUD: load of a missing id gives null", async () => {
        assert.equal(await admin.openSession().load(`products/${run}-never`), null);
    });

    // --- attachments ----------------------------------------------------
    const att = { name: "manual.pdf", contentType: "application/pdf", bytes: crypto.randomBytes(64 * 1024 + 7) };
    await check("attachments: store, then get bytes, size and content type", async () => {
        const s = admin.openSession();
        await s.store(new Product("Seed", 1, ["seed"]), seedId);
        await s.saveChanges();
        const doc = await s.load(seedId);
        s.advanced.attachments.store(doc, att.name, att.bytes, att.contentType);
        await s.saveChanges();

        const s2 = admin.openSession();
        const d2 = await s2.load(seedId, Product);
        assert.deepEqual(s2.advanced.attachments.getNames(d2).map(a => a.name), [att.name], "@attachments metadata");
        const got = await s2.advanced.attachments.get(seedId, att.name);
        assert.ok(got, "attachment missing");
        try {
            const bytes = await readAll(got.data);
            assert.ok(bytes.equals(att.bytes), "attachment bytes differ");
            assert.equal(got.details.contentType, att.contentType, "Content-Type");
            assert.equal(got.details.size, att.bytes.length, "Attachment-Size");
            assert.equal(got.details.name, att.name);
            assert.equal(got.details.documentId, seedId);
        } finally {
            got.dispose();
        }
    });

    await check("attachments: a missing attachment gives null", async () => {
        const s = admin.openSession();
        assert.equal(await s.advanced.attachments.get(seedId, "nope.bin"), null);
    });

    // --- a Read certificate ------------------------------------------------
    await check("Read certificate: load works (document and attachment)", async () => {
        const s = reader.openSession();
        const p = await s.load(seedId, Product);
        assert.ok(p, "seed document not visible to the reader");
        assert.equal(p.name, "Seed");
        const got = await s.advanced.attachments.get(seedId, att.name);
        assert.ok(got, "attachment not visible to the reader");
        try {
            assert.ok((await readAll(got.data)).equals(att.bytes), "attachment bytes differ");
        } finally {
            got.dispose();
        }
    });

    await check("Read certificate: store + saveChanges is refused with AuthorizationException", async () => {
        const s = reader.openSession();
        await s.store(new Product("forbidden", 0, []), `products/${run}-by-reader`);
        await rejectsWith(() => s.saveChanges(), ["AuthorizationException"], ["Read access to database " + db, "does not allow"]);
        assert.equal(await admin.openSession().load(`products/${run}-by-reader`), null, "the refused write was stored");
    });

    await check("Read certificate: delete is refused with AuthorizationException", async () => {
        const s = reader.openSession();
        await s.delete(seedId);
        await rejectsWith(() => s.saveChanges(), ["AuthorizationException"], ["Read access to database " + db]);
        assert.ok(await admin.openSession().load(seedId), "the refused delete removed the document");
    });

    // --- a ValidUser without access ----------------------------------------
    await check("ValidUser without access: load is refused with AuthorizationException", async () => {
        const s = noAccess.openSession();
        await rejectsWith(() => s.load(seedId), ["AuthorizationException"], ["has no access to database " + db]);
    });

    // --- no client certificate at all --------------------------------------
    // The client refuses authOptions without a certificate, so this one is
    // https trusting the CA only: the "certificate" PEM is the CA's
    // certificate and holds no "RSA PRIVATE KEY", so the TLS handshake
    // carries no client certificate (the server's answer confirms it).
    await check("no client certificate: a readable refusal", async () => {
        const anon = new DocumentStore(url, db, { type: "pem", certificate: caPem, ca: caPem });
        anon.initialize();
        stores.push(anon);
        await rejectsWith(() => anon.openSession().load(seedId),
            ["AuthorizationException", "RavenException"], ["client certificate", "none was provided"]);
    });

    await check("cleanup: delete the seed document", async () => {
        const s = admin.openSession();
        await s.delete(seedId);
        await s.saveChanges();
        assert.equal(await admin.openSession().load(seedId), null);
    });
} finally {
    for (const s of stores) s.dispose();
}

console.log(failures ? `CASES FAILED (${failures})` : "CASES PASSED");
process.exit(failures ? 1 : 0);
