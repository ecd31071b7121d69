// The master's application in synchronous-replication tests: a sync space `kv` and a writer fiber
// that inserts every 5 ms and remembers every acknowledged key in `acked` until `writing = false`.
export const SYNC_LOAD = `
  local s = box.schema.space.create('kv', {is_sync = true, if_not_exists = true}) s:create_index('pk', {if_not_exists = true})
  rawset(_G, 'acked', {}) rawset(_G, 'writing', true)
  require('fiber').create(function()
    local n = s:len()
    while writing do
      n = n + 1
      if pcall(s.insert, s, {n, 'v'}) then table.insert(acked, n) end
      require('fiber').sleep(0.005)
    end
  end)`;
