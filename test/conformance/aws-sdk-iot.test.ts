import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AddThingToThingGroupCommand,
  AssociateTargetsWithJobCommand,
  CancelJobExecutionCommand,
  CreateJobTemplateCommand,
  DeleteJobExecutionCommand,
  DeleteJobTemplateCommand,
  DeleteThingCommand,
  DeleteThingGroupCommand,
  DescribeJobTemplateCommand,
  DescribeThingCommand,
  DescribeThingGroupCommand,
  ListJobTemplatesCommand,
  ListThingGroupsCommand,
  ListThingsCommand,
  RemoveThingFromThingGroupCommand,
  UpdateJobCommand,
  VersionConflictException,
  CancelJobCommand,
  CreateJobCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  DeleteJobCommand,
  DescribeJobCommand,
  DescribeJobExecutionCommand,
  GetJobDocumentCommand,
  IoTClient,
  ListJobExecutionsForJobCommand,
  ListJobExecutionsForThingCommand,
  ListJobsCommand,
  ListThingsInThingGroupCommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
} from '@aws-sdk/client-iot';
import { BACKENDS } from '../helpers/db.js';
import { createControlPlane, type ControlPlane } from '../helpers/control-plane.js';

/**
 * [protocol §5] @aws-sdk/client-iot, unmodified, pointed at fleetjobs over a real socket (auth off; dummy credentials
 * sign requests that are not checked).
 */
describe.each(BACKENDS)('@aws-sdk/client-iot against the operator API on %s', (backend) => {
  let cp: ControlPlane;
  let iot: IoTClient;

  beforeAll(async () => {
    cp = await createControlPlane(backend);
    const address = await cp.app.listen({ host: '127.0.0.1', port: 0 });
    iot = new IoTClient({
      endpoint: address,
      region: 'local',
      credentials: {
        accessKeyId: 'AKIDEXAMPLE',
        secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    iot.destroy();
    await cp.close();
  });

  it('runs CreateThing, CreateThingGroup, AddThingToThingGroup, CreateJob, DescribeJob, ListJobExecutionsForJob, CancelJob, DeleteJob', async () => {
    const thing = await iot.send(
      new CreateThingCommand({ thingName: 'sdk-thing', attributePayload: { attributes: { model: 'x1' } } }),
    );
    expect(thing).toMatchObject({
      thingName: 'sdk-thing',
      thingArn: 'arn:aws:iot:local:000000000000:thing/sdk-thing',
      thingId: expect.any(String),
    });
    await iot.send(new CreateThingCommand({ thingName: 'sdk-other' }));
    const group = await iot.send(
      new CreateThingGroupCommand({
        thingGroupName: 'sdk-group',
        thingGroupProperties: { thingGroupDescription: 'from the SDK' },
      }),
    );
    expect(group.thingGroupArn).toBe('arn:aws:iot:local:000000000000:thinggroup/sdk-group');
    await iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'sdk-group', thingName: 'sdk-thing' }));
    await iot.send(
      new AddThingToThingGroupCommand({ thingGroupArn: group.thingGroupArn, thingArn: thing.thingArn }),
    );
    const members = await iot.send(new ListThingsInThingGroupCommand({ thingGroupName: 'sdk-group' }));
    expect(members.things).toEqual(['sdk-thing']);

    const job = await iot.send(
      new CreateJobCommand({
        jobId: 'sdk-job',
        targets: [group.thingGroupArn as string, 'arn:aws:iot:local:000000000000:thing/sdk-other'],
        document: JSON.stringify({ operation: 'reboot' }),
        description: 'reboot from the SDK',
        timeoutConfig: { inProgressTimeoutInMinutes: 10 },
        jobExecutionsRetryConfig: { criteriaList: [{ failureType: 'FAILED', numberOfRetries: 2 }] },
        abortConfig: {
          criteriaList: [
            {
              failureType: 'FAILED',
              action: 'CANCEL',
              thresholdPercentage: 50,
              minNumberOfExecutedThings: 1,
            },
          ],
        },
      }),
    );
    expect(job).toMatchObject({
      jobArn: 'arn:aws:iot:local:000000000000:job/sdk-job',
      jobId: 'sdk-job',
      description: 'reboot from the SDK',
    });

    const described = await iot.send(new DescribeJobCommand({ jobId: 'sdk-job' }));
    expect(described.job).toMatchObject({
      jobId: 'sdk-job',
      status: 'IN_PROGRESS',
      targetSelection: 'SNAPSHOT',
      jobProcessDetails: { numberOfQueuedThings: 2, numberOfSucceededThings: 0 },
      timeoutConfig: { inProgressTimeoutInMinutes: 10 },
    });
    expect(described.job?.createdAt).toBeInstanceOf(Date);
    expect(described.job?.createdAt?.toISOString()).toBe('2026-01-01T00:00:00.000Z');

    const doc = await iot.send(new GetJobDocumentCommand({ jobId: 'sdk-job' }));
    expect(JSON.parse(doc.document as string)).toEqual({ operation: 'reboot' });

    const executions = await iot.send(
      new ListJobExecutionsForJobCommand({ jobId: 'sdk-job', maxResults: 1 }),
    );
    expect(executions.executionSummaries).toEqual([
      {
        thingArn: 'arn:aws:iot:local:000000000000:thing/sdk-other',
        jobExecutionSummary: {
          status: 'QUEUED',
          queuedAt: new Date('2026-01-01T00:00:00.000Z'),
          lastUpdatedAt: new Date('2026-01-01T00:00:00.000Z'),
          executionNumber: 1,
          retryAttempt: 0,
        },
      },
    ]);
    expect(executions.nextToken).toEqual(expect.any(String));
    const rest = await iot.send(
      new ListJobExecutionsForJobCommand({ jobId: 'sdk-job', nextToken: executions.nextToken }),
    );
    expect(rest.executionSummaries?.map((s) => s.thingArn)).toEqual([
      'arn:aws:iot:local:000000000000:thing/sdk-thing',
    ]);
    const forThing = await iot.send(new ListJobExecutionsForThingCommand({ thingName: 'sdk-thing' }));
    expect(forThing.executionSummaries?.[0]?.jobId).toBe('sdk-job');
    const execution = await iot.send(
      new DescribeJobExecutionCommand({ jobId: 'sdk-job', thingName: 'sdk-thing' }),
    );
    expect(execution.execution).toMatchObject({
      status: 'QUEUED',
      versionNumber: 1,
      statusDetails: { detailsMap: {} },
    });
    const jobs = await iot.send(new ListJobsCommand({ status: 'IN_PROGRESS' }));
    expect(jobs.jobs?.map((j) => j.jobId)).toEqual(['sdk-job']);

    const canceled = await iot.send(
      new CancelJobCommand({ jobId: 'sdk-job', reasonCode: 'SDK_TEST', comment: 'canceled by the SDK' }),
    );
    expect(canceled.jobId).toBe('sdk-job');
    const after = await iot.send(new DescribeJobCommand({ jobId: 'sdk-job' }));
    expect(after.job).toMatchObject({
      status: 'CANCELED',
      reasonCode: 'SDK_TEST',
      comment: 'canceled by the SDK',
      jobProcessDetails: { numberOfCanceledThings: 2, numberOfQueuedThings: 0 },
    });

    await iot.send(new DeleteJobCommand({ jobId: 'sdk-job' }));
    await expect(iot.send(new DescribeJobCommand({ jobId: 'sdk-job' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });

  it('maps errors to the SDK exception classes', async () => {
    await iot.send(new CreateThingCommand({ thingName: 'dup' }));
    await iot.send(new CreateJobCommand({ jobId: 'dup-job', targets: ['thing/dup'], document: '{}' }));
    const err = await iot
      .send(new CreateJobCommand({ jobId: 'dup-job', targets: ['thing/dup'], document: '{}' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceAlreadyExistsException);
    expect((err as Error).message).toContain('dup-job');
    const missing = await iot
      .send(new CreateJobCommand({ jobId: 'x-job', targets: ['thing/not-there'], document: '{}' }))
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ResourceNotFoundException);
    expect((missing as Error).message).toContain('thing/not-there');
    await iot.send(new DeleteJobCommand({ jobId: 'dup-job', force: true }));
  });
  it('parses the responses of every other control-plane operation fleetjobs serves', async () => {
    await iot.send(
      new CreateThingCommand({ thingName: 'p-1', attributePayload: { attributes: { a: 'b' } } }),
    );
    const thing = await iot.send(new DescribeThingCommand({ thingName: 'p-1' }));
    expect(thing).toMatchObject({ thingName: 'p-1', attributes: { a: 'b' }, version: 1 });
    const things = await iot.send(new ListThingsCommand({ attributeName: 'a', attributeValue: 'b' }));
    expect(things.things?.map((t) => t.thingName)).toEqual(['p-1']);
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'p-group' }));
    const group = await iot.send(new DescribeThingGroupCommand({ thingGroupName: 'p-group' }));
    expect(group.thingGroupMetadata?.creationDate).toBeInstanceOf(Date);
    const groups = await iot.send(new ListThingGroupsCommand({ namePrefixFilter: 'p-' }));
    expect(groups.thingGroups).toEqual([
      { groupName: 'p-group', groupArn: 'arn:aws:iot:local:000000000000:thinggroup/p-group' },
    ]);

    await iot.send(
      new CreateJobCommand({
        jobId: 'p-cont',
        targets: [group.thingGroupArn as string],
        document: '{}',
        targetSelection: 'CONTINUOUS',
      }),
    );
    await iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'p-group', thingName: 'p-1' }));
    const execution = await iot.send(new DescribeJobExecutionCommand({ jobId: 'p-cont', thingName: 'p-1' }));
    expect(execution.execution?.status).toBe('QUEUED');
    await iot.send(new RemoveThingFromThingGroupCommand({ thingGroupName: 'p-group', thingName: 'p-1' }));
    const removed = await iot.send(new DescribeJobExecutionCommand({ jobId: 'p-cont', thingName: 'p-1' }));
    expect(removed.execution?.status).toBe('REMOVED');
    const associated = await iot.send(
      new AssociateTargetsWithJobCommand({
        jobId: 'p-cont',
        targets: [thing.thingArn as string],
        comment: 'direct',
      }),
    );
    expect(associated.jobId).toBe('p-cont');
    await iot.send(new UpdateJobCommand({ jobId: 'p-cont', description: 'updated' }));
    expect((await iot.send(new DescribeJobCommand({ jobId: 'p-cont' }))).job?.description).toBe('updated');

    const conflict = await iot
      .send(new CancelJobExecutionCommand({ jobId: 'p-cont', thingName: 'p-1', expectedVersion: 9 }))
      .catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(VersionConflictException);
    await iot.send(new CancelJobExecutionCommand({ jobId: 'p-cont', thingName: 'p-1', expectedVersion: 1 }));
    await iot.send(new DeleteJobExecutionCommand({ jobId: 'p-cont', thingName: 'p-1', executionNumber: 2 }));
    await iot.send(new DeleteJobCommand({ jobId: 'p-cont', force: true }));

    const template = await iot.send(
      new CreateJobTemplateCommand({
        jobTemplateId: 'p-template',
        description: 'a template',
        document: '{"a":1}',
      }),
    );
    expect(template.jobTemplateArn).toBe('arn:aws:iot:local:000000000000:jobtemplate/p-template');
    const described = await iot.send(new DescribeJobTemplateCommand({ jobTemplateId: 'p-template' }));
    expect(described).toMatchObject({ description: 'a template', document: '{"a":1}' });
    expect(described.createdAt).toBeInstanceOf(Date);
    const templates = await iot.send(new ListJobTemplatesCommand({}));
    expect(templates.jobTemplates?.map((t) => t.jobTemplateId)).toEqual(['p-template']);
    await iot.send(new DeleteJobTemplateCommand({ jobTemplateId: 'p-template' }));

    await iot.send(new DeleteThingGroupCommand({ thingGroupName: 'p-group' }));
    await iot.send(new DeleteThingCommand({ thingName: 'p-1' }));
    await expect(iot.send(new DescribeThingCommand({ thingName: 'p-1' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });
});
