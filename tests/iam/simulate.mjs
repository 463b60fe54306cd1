// IAM decisions by @cloud-copilot/iam-simulate (AGPL-3.0), for the tests only: this script
// runs in its own Node.js process, and nothing of the package imports or ships it.
//
//   node tests/iam/simulate.mjs < requests.json      a JSON array in, a JSON array out
//   node tests/iam/simulate.mjs --serve              one JSON request a line, one answer a line
//
// A request: {id, principal, action, resource, resourceAccount, identityPolicies: [doc],
// resourcePolicy?: doc, permissionBoundaries?: [doc], context?: {key: string | [string]}}.
// principal is an IAM ARN (a role, not its session) or a service principal such as
// omics.amazonaws.com. An answer: {id, decision: Allowed | ImplicitlyDenied |
// ExplicitlyDenied | Error, explanation, ignoredContextKeys, denials: [{policyType, explicit}]}.
import { createInterface } from 'node:readline'
import {
  getDenialReasons,
  getGrantReasons,
  isConditionKeyArray,
  runSimulation,
  runUnsafeSimulation,
  typeForContextKey
} from '@cloud-copilot/iam-simulate'

// Condition keys whose name ends in a caller-chosen part (kms:EncryptionContext:aws:logs:arn,
// after kms:EncryptionContext:). runSimulation keeps only the keys it can name, and finds these
// through a "/" only, so it drops them; they are still real keys of the request.
const VARIABLE_KEYS = [/^kms:encryptioncontext:.+$/i]

function simulationOf(request, resourcePolicy) {
  return {
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: request.resourceAccount },
      contextVariables: request.context ?? {}
    },
    identityPolicies: (request.identityPolicies ?? []).map((policy, index) => ({
      name: `identity-${index}`,
      policy
    })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(resourcePolicy ? { resourcePolicy } : {}),
    ...(request.permissionBoundaries?.length
      ? {
          permissionBoundaryPolicies: request.permissionBoundaries.map((policy, index) => ({
            name: `boundary-${index}`,
            policy
          }))
        }
      : {})
  }
}

function statementName(policy, index, sid) {
  return `${policy}#${sid ?? index}`
}

function explain(analysis) {
  const parts = []
  for (const grant of getGrantReasons(analysis)) {
    const where = grant.policyType === 'resource' ? 'resource' : grant.policyIdentifier
    parts.push(`allowed by ${statementName(where, grant.statementIndex, grant.statementId)}`)
  }
  for (const denial of getDenialReasons(analysis)) {
    if (denial.denialType === 'Explicit') {
      const where = denial.policyIdentifier ?? denial.policyType
      parts.push(`denied by ${statementName(where, denial.statementIndex, denial.statementId)}`)
    } else {
      parts.push(`no ${denial.policyType} statement allows`)
    }
  }
  return parts.join('; ')
}

// Which kinds of policy refused the request (identity, resource, pb for a permissions
// boundary, ...), for an AccessDenied message that says so.
function denials(analysis) {
  return getDenialReasons(analysis).map((denial) => ({
    policyType: denial.policyType,
    explicit: denial.denialType === 'Explicit'
  }))
}

async function typedContext(context) {
  const typed = {}
  for (const [key, value] of Object.entries(context)) {
    const type = await typeForContextKey(key)
    typed[key] = isConditionKeyArray(type) ? [value].flat() : Array.isArray(value) ? value[0] : value
  }
  return typed
}

async function decide(request) {
  const checked = await runSimulation(simulationOf(request, request.resourcePolicy), {})
  if (checked.resultType === 'error') {
    return {
      decision: 'Error',
      explanation: JSON.stringify(checked.errors),
      ignoredContextKeys: [],
      denials: []
    }
  }
  if (checked.resultType !== 'single') {
    return {
      decision: 'Error',
      explanation: `a wildcard resource (${request.resource}) gives no single decision`,
      ignoredContextKeys: [],
      denials: []
    }
  }
  const ignored = checked.result.ignoredContextKeys ?? []
  const dropped = ignored.filter((key) => VARIABLE_KEYS.some((pattern) => pattern.test(key)))
  if (dropped.length === 0) {
    return {
      decision: checked.overallResult,
      explanation: explain(checked.result.analysis),
      ignoredContextKeys: ignored,
      denials: denials(checked.result.analysis)
    }
  }
  // The policies, action and resource passed runSimulation's checks; the same engine decides
  // again without its context-key filter. Its resource policy must carry a name, as loaded
  // policies do, or it fails reading it: given in iam-policy's already-validated form.
  const context = Object.fromEntries(
    Object.entries(request.context ?? {}).filter(([key]) => !ignored.includes(key) || dropped.includes(key))
  )
  const unsafe = simulationOf(
    { ...request, context: await typedContext(context) },
    request.resourcePolicy
      ? {
          __validated: true,
          policyDocument: request.resourcePolicy,
          metadata: { name: 'resource' },
          errors: []
        }
      : undefined
  )
  // It answers the decision alone, without the statements behind it.
  const decision = runUnsafeSimulation(unsafe, {})
  return {
    decision,
    explanation: `decided with ${dropped.join(', ')}; without: ${checked.overallResult}`,
    ignoredContextKeys: ignored.filter((key) => !dropped.includes(key)),
    // The first run's reasons hold only where both runs came to the same decision.
    denials: decision === checked.overallResult ? denials(checked.result.analysis) : []
  }
}

async function answer(request) {
  try {
    return { id: request.id ?? null, ...(await decide(request)) }
  } catch (error) {
    return {
      id: request.id ?? null,
      decision: 'Error',
      explanation: String(error?.message ?? error),
      ignoredContextKeys: [],
      denials: []
    }
  }
}

async function readAll(stream) {
  const chunks = []
  for await (const chunk of stream) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

if (process.argv.includes('--serve')) {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (!line.trim()) continue
    let reply
    try {
      reply = await answer(JSON.parse(line))
    } catch (error) {
      reply = {
        id: null,
        decision: 'Error',
        explanation: String(error),
        ignoredContextKeys: [],
        denials: []
      }
    }
    process.stdout.write(JSON.stringify(reply) + '\n')
  }
} else {
  const requests = JSON.parse(await readAll(process.stdin))
  const replies = []
  for (const request of requests) replies.push(await answer(request))
  process.stdout.write(JSON.stringify(replies))
}
