// Seed interop scenario: the official RavenDB Node.js client (ravendb@7.2.6),
// unchanged, against a magpie server.
//
//   MAGPIE_URL   https://127.0.0.1:PORT
//   MAGPIE_CERT  client certificate PEM          (e.g. DATA/certs/admin.pem)
//   MAGPIE_KEY   client key PEM, PKCS#1 only     (e.g. DATA/certs/admin-key.pem)
//   MAGPIE_CA    CA that signed the server cert  (e.g. DATA/certs/ca.pem)
//   MAGPIE_BACKUP_DIR  optional: backup folder ON THE SERVER'S MACHINE
//                      (default: a fresh /tmp/magpie-scenario-* path)
//   MAGPIE_KEEP=1      optional: do not delete the two databases at the end
//
// Exit code 0 = every step passed.

import fs from "node:fs";
import https from "node:https";
import crypto from "node:crypto";
import assert from "node:assert/strict";
import {
    DocumentStore,
    CreateDatabaseOperation,
    GetDatabaseNamesOperation,
    DeleteDatabasesOperation,
    GetStatisticsOperation,
    UpdatePeriodicBackupOperation,
    StartBackupOperation,
    GetPeriodicBackupStatusOperation,
    RestoreBackupOperation,
    OperationCompletionAwaiter,
} from "ravendb";

function env(name) {
    const v = process.env[name];
    if (!v) {
        console.error(`missing environment variable ${name}`);
        process.exit(2);
    }
    return v;
}

const url = env("MAGPIE_URL").replace(/\/$/, "");
const certPem = fs.readFileSync(env("MAGPIE_CERT"), "utf8");
const keyPem = fs.readFileSync(env("MAGPIE_KEY"), "utf8");
const caPem = fs.readFileSync(env("MAGPIE_CA"), "utf8");
const run = `${Date.now().toString(36)}${crypto.randomBytes(2).toString("hex")}`;
const srcDb = `interop-src-${run}`;
const dstDb = `interop-dst-${run}`;
const badDb = `interop-bad-${run}`;
const backupDir = process.env.MAGPIE_BACKUP_DIR || `/tmp/magpie-scenario-${run}`;

// The client's PEM loader only extracts "RSA PRIVATE KEY" blocks; any other key
// block (PKCS#8 "PRIVATE KEY", "EC PRIVATE KEY") is dropped without a word and the
// TLS handshake then carries no client certificate. Fail fast instead.
if (!keyPem.includes("-----BEGIN RSA PRIVATE KEY-----")) {
    console.error("MAGPIE_KEY must be an RSA key in PKCS#1 PEM ('RSA PRIVATE KEY'); "
        + "the ravendb client silently ignores other key formats.");
    process.exit(2);
}

const authOptions = { type: "pem", certificate: certPem + "\n" + keyPem, ca: caPem };

let failures = 0;
async function step(name, fn) {
    const t0 = Date.now();
    try {
        const r = await fn();
        console.log(`PASS ${name} (${Date.now() - t0} ms)`);
        return r;
    } catch (e) {
        failures++;
        console.log(`FAIL ${name}: ${e && e.name}: ${e && e.message}`);
        throw e;
    }
}

function withTimeout(promise, ms, what) {
    let timer;
    return Promise.race([
        promise.finally(() => clearTimeout(timer)),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms); }),
    ]);
}

// Raw HTTPS call (no client operation exists for /admin/secrets).
function rawRequest(method, path, body, contentType) {
    return new Promise((resolve, reject) => {
        const u = new URL(url + path);
        const req = https.request({
            method, hostname: u.hostname, port: u.port, path: u.pathname + u.search,
            cert: certPem, key: keyPem, ca: caPem,
            headers: body === undefined ? {} : { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body) },
        }, res => {
            const chunks = [];
            res.on("data", c => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
        });
        req.on("error", reject);
        if (body !== undefined) req.write(body);
        req.end();
    });
}

class User {
    constructor(name, email, born) { this.name = name; this.email = email; this.born = born; }
}
class Order {
    constructor(customer, lines, note) { this.customer = customer; this.lines = lines; this.note = note; }
}

// Expected content. The note carries raw control characters on purpose.
const expected = {
    "users/1": { cls: User, data: { name: "Ada Lovelace", email: "ada@example.org", born: "1815-12-10" } },
    "users/2": { cls: User, data: { name: "Émile Zola ✓", email: "zola@example.org", born: "1840-04-02" } },
    "orders/1": { cls: Order, data: { customer: "users/1", lines: [{ sku: "p-1", qty: 2, price: 9.5 }, { sku: "p-2", qty: 1, price: 120 }], note: "tab\there, bell\u0007, nul-free" } },
};
const attachment = { docId: "users/1", name: "photo.bin", contentType: "application/octet-stream", bytes: crypto.randomBytes(256 * 1024) };

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

async function checkDatabase(store, db) {
    const session = store.openSession(db);
    for (const [id, { cls, data }] of Object.entries(expected)) {
        const doc = await session.load(id, cls);
        assert.ok(doc, `${db}: ${id} not found`);
        assert.ok(doc instanceof cls, `${db}: ${id} not revived as ${cls.name}`);
        assert.deepEqual(plain(doc), data, `${db}: ${id} content differs`);
        const md = session.advanced.getMetadataFor(doc);
        assert.equal(md["@id"], id);
        assert.equal(md["@collection"], cls === User ? "Users" : "Orders");
        assert.equal(typeof md["@change-vector"], "string");
        const lm = session.advanced.getLastModifiedFor(doc);
        assert.ok(lm instanceof Date && !Number.isNaN(lm.getTime()), `${db}: ${id} @last-modified not parsable`);
    }
    assert.equal(await session.load("temp/1"), null, `${db}: deleted document temp/1 came back`);
    assert.equal(await session.load("users/does-not-exist"), null, `${db}: missing id did not load as null`);

    const user1 = await session.load(attachment.docId, User);
    const names = session.advanced.attachments.getNames(user1).map(a => a.name);
    assert.deepEqual(names, [attachment.name], `${db}: @attachments metadata`);
    const att = await session.advanced.attachments.get(attachment.docId, attachment.name);
    assert.ok(att, `${db}: attachment missing`);
    try {
        const bytes = await readAll(att.data);
        assert.equal(att.details.size, attachment.bytes.length, `${db}: Attachment-Size`);
        assert.equal(att.details.contentType, attachment.contentType, `${db}: attachment Content-Type`);
        assert.ok(att.details.hash, `${db}: Attachment-Hash header missing`);
        assert.ok(att.details.changeVector, `${db}: attachment ETag (change vector) missing`);
        assert.ok(bytes.equals(attachment.bytes), `${db}: attachment bytes differ`);
    } finally {
        att.dispose();
    }
    assert.equal(await session.advanced.attachments.get(attachment.docId, "nope.bin"), null, `${db}: missing attachment is not null`);

    const stats = await store.maintenance.forDatabase(db).send(new GetStatisticsOperation());
    assert.equal(stats.countOfDocuments, 3, `${db}: CountOfDocuments`);
    assert.equal(stats.countOfAttachments, 1, `${db}: CountOfAttachments`);
}

const store = new DocumentStore(url, srcDb, authOptions);
store.initialize();
const key = crypto.randomBytes(32).toString("base64");

try {
    await step("put secret key (raw POST /admin/secrets)", async () => {
        const r = await rawRequest("POST", `/admin/secrets?name=${encodeURIComponent(srcDb)}&overwrite=false`, key, "text/plain");
        assert.equal(r.status, 201, `expected 201, got ${r.status}: ${r.body}`);
    });

    await step("create encrypted database", async () => {
        const r = await store.maintenance.server.send(new CreateDatabaseOperation({ databaseName: srcDb, encrypted: true }));
        assert.ok(r && typeof r === "object", "no DatabasePutResult");
    });

    await step("database listed", async () => {
        const names = await store.maintenance.server.send(new GetDatabaseNamesOperation(0, 1024));
        assert.ok(names.includes(srcDb), `${srcDb} not in ${JSON.stringify(names)}`);
    });

    await step("store 3 documents + 1 attachment, delete a 4th", async () => {
        const session = store.openSession();
        for (const [id, { cls, data }] of Object.entries(expected)) {
            const e = Object.assign(new cls(), data);
            await session.store(e, id);
        }
        await session.store(new User("temp", "temp@example.org", "2000-01-01"), "temp/1");
        await session.saveChanges();
        const user1 = await session.load(attachment.docId);
        session.advanced.attachments.store(user1, attachment.name, attachment.bytes, attachment.contentType);
        await session.saveChanges();

        const s2 = store.openSession();
        await s2.delete("temp/1");
        await s2.saveChanges();
    });

    await step("load back from source", () => checkDatabase(store, srcDb));

    const taskId = await step("configure backup task (UpdatePeriodicBackupOperation)", async () => {
        const r = await store.maintenance.send(new UpdatePeriodicBackupOperation({
            name: `interop-${run}`,
            backupType: "Backup",
            fullBackupFrequency: "0 3 * * *",
            localSettings: { folderPath: backupDir },
            backupEncryptionSettings: { encryptionMode: "UseDatabaseKey", key: null },
        }));
        assert.ok(Number.isInteger(r.taskId) && r.taskId > 0, `bad TaskId ${JSON.stringify(r)}`);
        return r.taskId;
    });

    await step("run full backup now and wait (StartBackupOperation + operations/state)", async () => {
        const r = await store.maintenance.send(new StartBackupOperation(true, taskId));
        assert.ok(Number.isInteger(r.operationId), `bad StartBackupOperationResult ${JSON.stringify(r)}`);
        const executor = store.getRequestExecutor(srcDb);
        const awaiter = new OperationCompletionAwaiter(executor, executor.conventions, r.operationId, r.responsibleNode);
        await withTimeout(awaiter.waitForCompletion(), 120_000, "backup operation");
    });

    const backupLocation = await step("backup status", async () => {
        const r = await store.maintenance.send(new GetPeriodicBackupStatusOperation(taskId));
        const s = r.status;
        assert.ok(s, "no Status");
        assert.ok(s.lastFullBackup instanceof Date, "LastFullBackup not a date");
        assert.ok(s.localBackup && s.localBackup.backupDirectory, "no LocalBackup.BackupDirectory");
        return s.localBackup.backupDirectory;
    });

    await step("restore with a wrong key fails and leaves nothing", async () => {
        const wrong = crypto.randomBytes(32).toString("base64");
        const op = await store.maintenance.server.send(new RestoreBackupOperation({
            databaseName: badDb, backupLocation, encryptionKey: wrong, type: "Local",
        }));
        await assert.rejects(withTimeout(op.waitForCompletion(), 120_000, "restore (wrong key)"),
            e => { console.log(`     (expected) ${e.name}: ${e.message.split("\n")[0]}`); return true; });
        const names = await store.maintenance.server.send(new GetDatabaseNamesOperation(0, 1024));
        assert.ok(!names.includes(badDb), `${badDb} was registered after a failed restore`);
    });

    await step("restore with EncryptionKey to a new name", async () => {
        const op = await store.maintenance.server.send(new RestoreBackupOperation({
            databaseName: dstDb, backupLocation, encryptionKey: key, type: "Local", disableOngoingTasks: false,
        }));
        await withTimeout(op.waitForCompletion(), 120_000, "restore");
        const names = await store.maintenance.server.send(new GetDatabaseNamesOperation(0, 1024));
        assert.ok(names.includes(dstDb), `${dstDb} not listed after restore`);
    });

    await step("load back from restored database and compare", () => checkDatabase(store, dstDb));

    if (!process.env.MAGPIE_KEEP) {
        await step("delete both databases", async () => {
            const r = await store.maintenance.server.send(new DeleteDatabasesOperation({ databaseNames: [srcDb, dstDb], hardDelete: true }));
            assert.ok(r && typeof r === "object", "no DeleteDatabaseResult");
            const names = await store.maintenance.server.send(new GetDatabaseNamesOperation(0, 1024));
            assert.ok(!names.includes(srcDb) && !names.includes(dstDb), "databases still listed");
        });
    }
} catch {
    // the failing step already printed itself
} finally {
    store.dispose();
}

console.log(failures ? `SCENARIO FAILED (${failures})` : "SCENARIO PASSED");
process.exit(failures ? 1 : 0);
