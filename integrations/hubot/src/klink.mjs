// Description:
//   Run Klink's commands from the room: the same verbs as the `klink` CLI, as yourself.
//
// Configuration:
//   KLINK_URL           - where Klink serves, e.g. https://klink.example.com (default http://127.0.0.1:8642)
//   KLINK_HUBOT_SECRET  - the secret shared with Klink's KLINK_HUBOT_SECRET
//
// Commands:
//   klink help - what you may run
//   klink link - link yourself to your Klink token (then run `klink chat link CODE` in a terminal)
//   klink <command> - any Klink command, e.g. `klink deploy search prod img-1 -m "why"`
//
// Notes:
//   Each message goes to Klink's /chat/hubot with the chat user and room, signed like Slack's
//   requests: X-Klink-Signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}") and
//   X-Klink-Request-Timestamp. Klink answers with JSON lines, posted to the room as they come:
//   progress while the command runs, then its result. What is for you only (help, your link
//   code, a refusal) goes to you directly.

import { createHmac } from 'node:crypto'

export function sign (secret, timestamp, body) {
  const digest = createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')
  return `v0=${digest}`
}

async function * jsonLines (stream) {
  const decoder = new TextDecoder()
  let pending = ''
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true })
    let newline
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline).trim()
      pending = pending.slice(newline + 1)
      if (line) yield JSON.parse(line)
    }
  }
  if (pending.trim()) yield JSON.parse(pending)
}

export async function forward ({ url, secret, user, room, text, fetchImpl = fetch }) {
  const body = JSON.stringify({ user, room, text })
  const timestamp = String(Math.floor(Date.now() / 1000))
  const answer = await fetchImpl(`${url.replace(/\/+$/, '')}/chat/hubot`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'X-Klink-Request-Timestamp': timestamp,
      'X-Klink-Signature': sign(secret, timestamp, body)
    },
    body
  })
  if (!answer.ok) {
    let message = `HTTP ${answer.status}`
    try {
      message = (await answer.json()).error.message + ` (${message})`
    } catch {}
    throw new Error(message)
  }
  return jsonLines(answer.body)
}

export default (robot) => {
  const url = process.env.KLINK_URL || 'http://127.0.0.1:8642'
  const secret = process.env.KLINK_HUBOT_SECRET
  if (!secret) {
    robot.logger.warn('hubot-klink: KLINK_HUBOT_SECRET is not set; klink commands are off')
  }
  robot.hear(/^klink(?:\s+(.*))?$/i, async (res) => {
    if (!secret) return res.send('klink: KLINK_HUBOT_SECRET is not set for this bot')
    const { user } = res.message
    try {
      const lines = await forward({
        url,
        secret,
        user: { id: String(user.id), name: user.name ?? String(user.id) },
        room: res.message.room ?? user.room ?? '',
        text: res.match[1] ?? ''
      })
      for await (const line of lines) {
        if (line.type === 'done' && line.private) {
          await robot.send({ user, room: user.id }, line.text)
        } else if (line.type === 'status') {
          await res.send(line.text)
        } else if (line.type === 'done') {
          await res.send(line.ok ? `klink: ${line.text}` : `klink: *${line.text}*`)
        } else if (line.text) {
          await res.send('```\n' + line.text + '\n```')
        }
      }
    } catch (error) {
      await res.send(`klink: ${error.message}`)
    }
  })
}
