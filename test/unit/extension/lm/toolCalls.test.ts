/** Tool calling as text: the tools prompt, earlier calls and results read back, and calls split out of a streamed answer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lmQuestion, LmMessage } from '../../../../src/extension/lm/lmConversation';
import { StreamedPart, ToolCallStream, toolsPrompt } from '../../../../src/extension/lm/toolCalls';

const READ = { name: 'read_file', description: 'Reads a file.', inputSchema: { type: 'object', properties: { path: { type: 'string' } } } };

/** Feeds `chunks` one by one and returns every part, joined where text follows text. */
function stream(chunks: string[], tools = ['read_file']): StreamedPart[] {
  const s = new ToolCallStream(new Set(tools));
  const parts = [...chunks.flatMap((c) => s.push(c)), ...s.end()];
  return parts.reduce<StreamedPart[]>((out, p) => {
    const last = out[out.length - 1];
    if (p.kind === 'text' && last?.kind === 'text') out[out.length - 1] = { kind: 'text', text: last.text + p.text };
    else out.push(p);
    return out;
  }, []);
}

describe('tool calls', () => {
  it("put the tools before the first question as Qwen2's template does, each signature one JSON line", () => {
    const text = toolsPrompt([READ]);
    assert.match(text, /^# Tools\n/);
    const signature = text.split('\n').find((l) => l.startsWith('{"type"'))!;
    assert.deepEqual(JSON.parse(signature), {
      type: 'function',
      function: { name: 'read_file', description: 'Reads a file.', parameters: READ.inputSchema },
    });
    const user = (text: string): LmMessage => ({ role: 'user', parts: [{ kind: 'text', text }] });
    const q = lmQuestion([user('Which file?')], [READ]);
    assert.ok(q.question.startsWith(`${text}\n\nWhich file?`));
  });

  it('read an earlier call and its result back as the tags the model writes and reads', () => {
    const q = lmQuestion([
      { role: 'user', parts: [{ kind: 'text', text: 'Open a.txt' }] },
      { role: 'assistant', parts: [{ kind: 'toolCall', name: 'read_file', input: { path: 'a.txt' } }] },
      { role: 'user', parts: [{ kind: 'toolResult', text: 'hello' }] },
    ]);
    assert.deepEqual(q.history, [
      { question: 'Open a.txt', answer: '<tool_call>\n{"name":"read_file","arguments":{"path":"a.txt"}}\n</tool_call>' },
    ]);
    assert.equal(q.question, '<tool_response>\nhello\n</tool_response>');
  });

  it('split a call out of the stream, however the chunks cut the tags, and pass the text around it on', () => {
    const answer = 'Let me look.<tool_call>\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n</tool_call> Done.';
    const expected: StreamedPart[] = [
      { kind: 'text', text: 'Let me look.' },
      { kind: 'call', name: 'read_file', input: { path: 'a.txt' } },
      { kind: 'text', text: ' Done.' },
    ];
    for (const size of [1, 3, 7, 200]) {
      const chunks = answer.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g'))!;
      assert.deepEqual(stream(chunks), expected, `chunks of ${size}`);
    }
    // arguments given as a JSON string, as some models write them
    assert.deepEqual(stream(['<tool_call>{"name":"read_file","arguments":"{\\"path\\":\\"b\\"}"}</tool_call>']), [
      { kind: 'call', name: 'read_file', input: { path: 'b' } },
    ]);
  });

  it('hold back only what may start a call, and pass on as text a call that does not parse or names no offered tool', () => {
    const s = new ToolCallStream(new Set(['read_file']));
    assert.deepEqual(s.push('a <tool'), [{ kind: 'text', text: 'a ' }]);
    assert.deepEqual(s.push('s are fine'), [{ kind: 'text', text: '<tools are fine' }]);
    const bad = '<tool_call>not json</tool_call>';
    assert.deepEqual(stream([bad]), [{ kind: 'text', text: bad }]);
    const other = '<tool_call>{"name":"rm_rf","arguments":{}}</tool_call>';
    assert.deepEqual(stream([other]), [{ kind: 'text', text: other }]);
    assert.deepEqual(
      stream(['<tool_call>{"name":"read_file"']),
      [{ kind: 'text', text: '<tool_call>{"name":"read_file"' }],
      'an unfinished call at the end is text',
    );
  });
});
