// One-shot init of the one-node replica set "lumen" (docker-compose.yml, service mongo-init).
// Idempotent: an initialised set is left alone. Exits non-zero if no primary is elected in 60 s,
// so that everything gated on `service_completed_successfully` stays down with a clear log.
try {
  rs.status();
  print("replica set already initialised");
} catch (error) {
  if (error.codeName !== "NotYetInitialized") throw error;
  rs.initiate({ _id: "lumen", members: [{ _id: 0, host: "mongo:27017" }] });
  print("replica set initiated");
}
for (let waited = 0; !db.hello().isWritablePrimary; waited++) {
  if (waited >= 60) {
    print("no primary after 60 s");
    quit(1);
  }
  sleep(1000);
}
print("primary ready");
