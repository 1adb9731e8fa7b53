import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AdmissionLimits } from '../../src/core/admission-limits.js';

describe('AdmissionLimits', () => {
  test('exempt and counted addresses keep their answers past the bound of the exemption memo', () => {
    const limits = new AdmissionLimits({ maxConnectionsPerIp: 1, connectionsPerIpPerSecond: 0, maxConnectionsPerUser: 0, perIpExempt: ['10.0.0.0/8', '::1'] });
    // More distinct addresses than the memo holds, twice over, interleaving exempt and counted ones.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5000; i++) {
        const exempt = `10.1.${i >> 8}.${i & 255}`;
        const counted = `192.168.${i >> 8}.${i & 255}`;
        assert.equal(limits.admitIp(exempt), undefined);
        if (round === 0) assert.equal(limits.admitIp(counted), undefined, `first connection of ${counted}`);
        assert.equal(limits.admitIp(counted), 'ip-connections', `second connection of ${counted} (round ${round})`);
      }
    }
    assert.equal(limits.admitIp('::1'), undefined);
    assert.equal(limits.admitIp('::1'), undefined);
    assert.equal(limits.admitIp('not an address'), undefined, 'an address that does not parse is not counted');
  });
});
