// The real hubot package running this script against a real `klink serve`: the Python test
// tests/chat/test_hubot.py starts Klink and runs this file with KLINK_URL, KLINK_HUBOT_SECRET
// and KLINK_TEST_TOKEN (a deployer's own token, to confirm a link code as `klink chat link` does).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { Adapter, Robot, TextMessage, User } from 'hubot'

const scripts = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src')

class RoomAdapter extends Adapter {
  constructor (robot) {
    super(robot)
    this.sent = []
  }

  async send (envelope, ...strings) {
    for (const text of strings) this.sent.push({ room: envelope.room, text })
  }

  async reply (envelope, ...strings) { return this.send(envelope, ...strings) }
  async run () { this.emit('connected') }
  close () {}
}

async function start () {
  const robot = new Robot({ use: (r) => new RoomAdapter(r) }, false, 'hubot')
  await robot.loadAdapter()
  await robot.loadFile(scripts, 'klink.mjs')
  await robot.run()
  return robot
}

async function say (robot, user, text, until) {
  const before = robot.adapter.sent.length
  await robot.receive(new TextMessage(user, text, `m${Math.random()}`))
  const deadline = Date.now() + 30000
  while (Date.now() < deadline) {
    const got = robot.adapter.sent.slice(before)
    if (until(got)) return got
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`no answer to ${text}: ${JSON.stringify(robot.adapter.sent.slice(before))}`)
}

const done = (got) => got.some((m) => m.text.startsWith('klink:') || m.room === 'U42')

test('help, a read, a refusal and a link through real Klink', async () => {
  const robot = await start()
  const alice = new User('U42', { name: 'alice', room: 'ops' })
  try {
    let got = await say(robot, alice, 'klink help', done)
    assert.equal(got[0].room, 'U42') // help goes to alice only
    assert.match(got[0].text, /not linked/)

    got = await say(robot, alice, 'klink envs', (g) => g.some((m) => m.text.startsWith('klink: done')))
    assert.ok(got.some((m) => m.room === 'ops' && m.text.includes('NAME') && m.text.includes('dev')), JSON.stringify(got))

    got = await say(robot, alice, 'klink deploy hello dev img-1 -m "why"', done)
    assert.equal(got[0].room, 'U42')
    assert.match(got[0].text, /only read/)

    got = await say(robot, alice, 'klink link', done)
    const code = got[0].text.match(/klink chat link ([A-Z0-9-]+)/)[1]
    const linked = await fetch(`${process.env.KLINK_URL}/chat/link`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${process.env.KLINK_TEST_TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ code })
    })
    assert.equal(linked.status, 200)
    assert.equal((await linked.json()).chatUser, 'hubot:U42')

    got = await say(robot, alice, 'klink help', done)
    assert.match(got[0].text, /You act as \*hank\* \(deployer\)/)
    got = await say(robot, alice, 'klink deployments hello dev', (g) => g.some((m) => m.text.startsWith('klink:')))
    assert.ok(got.some((m) => m.text.includes('by hank via hubot:U42')), JSON.stringify(got))
  } finally {
    robot.shutdown()
  }
})

test('a wrong secret is refused by Klink and said in the room', async () => {
  const saved = process.env.KLINK_HUBOT_SECRET
  process.env.KLINK_HUBOT_SECRET = 'not-the-secret'
  const robot = await start()
  process.env.KLINK_HUBOT_SECRET = saved
  try {
    const got = await say(robot, new User('U7', { name: 'eve', room: 'ops' }), 'klink envs', done)
    assert.match(got[0].text, /klink: bad or missing signature.*401/)
  } finally {
    robot.shutdown()
  }
})
