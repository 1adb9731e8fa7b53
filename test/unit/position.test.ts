import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatPosition, formatPositionList, parsePosition, parsePositionList } from '../../src/protocol/position.js';

describe('positions', () => {
  test('format and parse round-trip', () => {
    for (const p of [
      { epoch: 'abc', offset: 0 },
      { epoch: 'A-z_9', offset: 123456789012345 },
    ]) {
      assert.deepEqual(parsePosition(formatPosition(p)), p);
    }
    assert.equal(formatPosition({ epoch: 'e', offset: 7 }), 'e:7');
  });

  test('malformed positions parse to undefined', () => {
    for (const text of ['', 'e', 'e:', ':1', 'e:-1', 'e:1.5', 'e:x', 'a b:1', 'a:b:1', 'e:1234567890123456', `${'x'.repeat(33)}:1`, 'e,f:1']) {
      assert.equal(parsePosition(text), undefined, text);
    }
  });

  test('position lists need one element per channel; empty elements mean no position', () => {
    assert.deepEqual(parsePositionList('a:1,,b:2', 3), [{ epoch: 'a', offset: 1 }, undefined, { epoch: 'b', offset: 2 }]);
    assert.equal(parsePositionList('a:1,b:2', 3), undefined);
    assert.equal(parsePositionList('a:1,bad', 2), undefined);
    assert.equal(formatPositionList([{ epoch: 'a', offset: 1 }, undefined]), 'a:1,');
  });
});
