using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using static Bn.MLNet.Tests.MLNet.MLNetTestData;

namespace Bn.MLNet.Tests.MLNet;

[Collection(TorchGlobalStateCollection.Name)]
public class BatchNormCnnPipelineTests
{
    [Fact]
    public void PipelineFitsEvaluatesAndKeepsColumns()
    {
        var p = Pipeline;
        var scored = p.Model.Transform(p.Test);
        var schema = scored.Schema;
        // Input columns pass through; MapKeyToValue turned PredictedLabel back into text.
        Assert.NotNull(schema.GetColumnOrNull("Label"));
        Assert.NotNull(schema.GetColumnOrNull("Features"));
        var score = schema["Score"];
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 10), score.Type);
        VBuffer<ReadOnlyMemory<char>> slotNames = default;
        score.GetSlotNames(ref slotNames);
        var names = slotNames.DenseValues().Select(n => n.ToString()).ToArray();
        // MapValueToKey orders keys by first appearance in the training rows; slot names must follow the label's key values.
        var bn = BnTransformer(p.Model);
        Assert.Equal(bn.ClassNames, names);
        Assert.Equal(FashionMnist.ClassNames.OrderBy(x => x), names.OrderBy(x => x));
        Assert.Equal(TextDataViewType.Instance, schema["PredictedLabel"].Type);

        var predicted = scored.GetColumn<string>("PredictedLabel").ToArray();
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        Assert.Equal(200, scores.Length);
        for (int i = 0; i < scores.Length; i++)
        {
            Assert.Equal(1.0, scores[i].Sum(), 3);
            Assert.Equal(names[Array.IndexOf(scores[i], scores[i].Max())], predicted[i]);
        }

        // Evaluate on the transformer's own output (PredictedLabel still a key there).
        var bnOutput = bn.Transform(p.Context.Transforms.Conversion.MapValueToKey("Label").Fit(p.Train).Transform(p.Test));
        var metrics = p.Context.MulticlassClassification.Evaluate(bnOutput);
        Assert.InRange(metrics.MicroAccuracy, 0.4, 1.0); // 600 rows, 1 epoch: far above chance (0.1)
        Assert.Equal(10, metrics.PerClassLogLoss.Count);
        Assert.NotNull(bn.TrainingHistory);
        Assert.Single(bn.TrainingHistory!.Epochs);
    }

    [Fact]
    public void OutputSchemaHasKeyTypedPredictionWithKeyValues()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        var keyed = p.Context.Transforms.Conversion.MapValueToKey("Label").Fit(p.Train).Transform(p.Test);
        var schema = bn.GetOutputSchema(keyed.Schema);
        var predicted = schema["PredictedLabel"];
        var key = Assert.IsType<KeyDataViewType>(predicted.Type);
        Assert.Equal(10UL, key.Count);
        VBuffer<ReadOnlyMemory<char>> keyValues = default;
        predicted.GetKeyValues(ref keyValues);
        Assert.Equal(bn.ClassNames, keyValues.DenseValues().Select(v => v.ToString()));
        Assert.Equal(keyed.Schema.Count + 2, schema.Count);
    }

    [Fact]
    public void PredictionEngineEqualsTransform()
    {
        var p = Pipeline;
        var rows = Rows(FashionMnistSplit.Test, 40);
        var data = p.Context.Data.LoadFromEnumerable(rows);
        var batch = Scores(p.Model, data);
        var engine = p.Context.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(p.Model);
        var single = rows.Select(r => engine.Predict(r).Score.ToArray()).ToArray();
        AssertClose(batch, single, 1e-5f);
        var labels = p.Model.Transform(data).GetColumn<string>("PredictedLabel").ToArray();
        Assert.Equal(labels, rows.Select(r => engine.Predict(r).PredictedLabel));
    }

    [Fact]
    public void ScoreOfARowDoesNotDependOnItsBatch()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        var rows = Rows(FashionMnistSplit.Test, 64);
        var keyedPipeline = p.Context.Transforms.Conversion.MapValueToKey("Label").Fit(p.Train);
        float[][] ScoreRows(IEnumerable<ImageRow> r) => Scores(bn, keyedPipeline.Transform(p.Context.Data.LoadFromEnumerable(r.ToList())));

        var all = ScoreRows(rows);                                       // batch of 64 (inference batch 64)
        var alone = rows.Select(r => ScoreRows([r])[0]).ToArray();       // batches of one
        var reversed = ScoreRows(Enumerable.Reverse(rows)).Reverse().ToArray(); // other companions
        var withOthers = ScoreRows(rows.Take(8).Concat(Rows(FashionMnistSplit.Train, 56, skip: 1000))).Take(8).ToArray();
        AssertClose(all, alone, 1e-5f);
        AssertClose(all, reversed, 1e-5f);
        AssertClose(all.Take(8).ToArray(), withOthers, 1e-5f);
        // In training mode the same rows would be normalized by batch statistics and differ: make sure that is not what happens.
        Assert.False(bn.Network.training);
    }

    [Fact]
    public void EightThreadsWithOwnEnginesMatchOneThread()
    {
        var p = Pipeline;
        var rows = Rows(FashionMnistSplit.Test, 48);
        var engine = p.Context.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(p.Model);
        var expected = rows.Select(r => engine.Predict(r).Score.ToArray()).ToArray();
        var results = new float[8][][];
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            var own = p.Context.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(p.Model);
            var order = Enumerable.Range(0, rows.Count).Select(i => (i + (t * 5)) % rows.Count).ToArray();
            var r = new float[rows.Count][];
            for (int rep = 0; rep < 3; rep++)
            {
                foreach (int i in order)
                    r[i] = own.Predict(rows[i]).Score.ToArray();
            }

            results[t] = r;
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        foreach (var r in results)
            AssertClose(expected, r, 0f);
    }

    [Fact]
    public void ParallelCursorsMatchOneCursor()
    {
        var p = Pipeline;
        var data = p.Context.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Test, 300));
        var scored = p.Model.Transform(data);
        var expected = scored.GetColumn<float[]>("Score").ToArray();
        var results = new float[6][][];
        Parallel.For(0, 6, new ParallelOptions { MaxDegreeOfParallelism = 6 }, t => results[t] = scored.GetColumn<float[]>("Score").ToArray());
        foreach (var r in results)
            AssertClose(expected, r, 0f);
    }

    [Fact]
    public void CursorWithPassThroughColumnsMatchesScoreOnlyCursor()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        var keyed = p.Context.Transforms.Conversion.MapValueToKey("Label").Fit(p.Train).Transform(p.Context.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Test, 130)));
        var a = Scores(bn, keyed); // Score only: one lead cursor; 130 rows = batches of 64, 64, 2
        // A cursor that also requests a pass-through column reads the input twice (lead + follow) in lockstep.
        var view = bn.Transform(keyed);
        var withLabel = new List<float[]>();
        var labels = new List<uint>();
        using (var cursor = view.GetRowCursor([view.Schema["Score"], view.Schema["Label"]]))
        {
            var score = cursor.GetGetter<VBuffer<float>>(view.Schema["Score"]);
            var label = cursor.GetGetter<uint>(view.Schema["Label"]);
            VBuffer<float> s = default;
            uint l = 0;
            while (cursor.MoveNext())
            {
                score(ref s);
                label(ref l);
                labels.Add(l);
                withLabel.Add(s.DenseValues().ToArray());
            }
        }

        AssertClose(a, withLabel.ToArray(), 0f);
        Assert.Equal(130, a.Length);
        Assert.Equal(keyed.GetColumn<uint>("Label"), labels);
    }

    [Fact]
    public void FitLogsThroughMLContextAndReportsProgress()
    {
        var ml = new MLContext(seed: 3);
        var messages = new List<string>();
        ml.Log += (_, e) =>
        {
            lock (messages)
                messages.Add(e.Message);
        };
        var reports = new List<TrainingProgress>();
        var options = SmallOptions();
        options.Progress = new SyncProgress<TrainingProgress>(reports.Add);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Train, 200)))
            .Transform(ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Train, 200)));
        var estimator = ml.Transforms.BatchNormCnn(options);
        using var model = estimator.Fit(data);
        EstimatorWorkout.Run(ml, estimator, model, data, ml.Data.TakeRows(data, 24), "Features", "Score", "PredictedLabel");
        Assert.Contains(messages, m => m.Contains("BatchNormCnn: training", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Contains("BatchNormCnn: epoch 1/1", StringComparison.Ordinal));
        Assert.Contains(reports, r => r.EpochCompleted);
    }

    [Fact]
    public void CancellationStopsFit()
    {
        var ml = new MLContext(seed: 3);
        using var cts = new CancellationTokenSource();
        var options = SmallOptions();
        options.CancellationToken = cts.Token;
        options.BatchSize = 10; // 40 steps; the first progress report (step 10) cancels
        var steps = new List<long>();
        options.Progress = new SyncProgress<TrainingProgress>(r =>
        {
            steps.Add(r.Step);
            cts.Cancel();
        });
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Train, 400)))
            .Transform(ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Train, 400)));
        Assert.ThrowsAny<OperationCanceledException>(() => ml.Transforms.BatchNormCnn(options).Fit(data));
        Assert.True(steps.Count >= 1 && steps[^1] < 40, $"progress steps: {string.Join(", ", steps)}");
    }

    [Fact]
    public void EmbeddingColumnHasLastHiddenWidth()
    {
        var ml = new MLContext(seed: 3);
        var options = SmallOptions();
        options.EmbeddingColumnName = "Embedding";
        var key = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Train, 200)));
        var data = key.Transform(ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Train, 200)));
        var estimator = ml.Transforms.BatchNormCnn(options);
        using var model = estimator.Fit(data);
        EstimatorWorkout.Run(ml, estimator, model, data, ml.Data.TakeRows(data, 24), "Features", "Score", "PredictedLabel", "Embedding");
        var scored = model.Transform(data);
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 32), scored.Schema["Embedding"].Type);
        var embeddings = scored.GetColumn<float[]>("Embedding").Take(5).ToArray();
        Assert.All(embeddings, e => Assert.Equal(32, e.Length));
        Assert.Contains(embeddings, e => e.Any(v => v != 0));
        // Embedding alone (no score requested) is computed too.
        Assert.Equal(embeddings[0], scored.GetColumn<float[]>("Embedding").First());
    }

    [Fact]
    public void InferenceModesBehaveAsDocumented()
    {
        var running = Pipeline;
        var population = TrainPipeline(BatchNormInferenceMode.PopulationStatistics);
        var folded = TrainPipeline(BatchNormInferenceMode.Folded);
        var data = running.Context.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Test, 100));
        var r = Scores(running.Model, data);
        var f = Scores(folded.Model, data);
        var pop = Scores(population.Model, data);
        // Same seed and data: folding changes only the arithmetic, not the function.
        AssertClose(r, f, 1e-4f);
        // Population statistics replace the moving averages after one epoch of training: different numbers.
        double maxDiff = r.Zip(pop).Max(x => x.First.Zip(x.Second).Max(y => Math.Abs(y.First - y.Second)));
        Assert.True(maxDiff > 1e-4, $"population statistics changed no score (max |Δ| = {maxDiff})");
        Assert.Equal(BatchNormInferenceMode.PopulationStatistics, BnTransformer(population.Model).InferenceMode);
        var foldedBn = BnTransformer(folded.Model);
        Assert.Equal(NormalizationKind.None, foldedBn.ScoringNetwork.Architecture.Normalization);
        Assert.Equal(NormalizationKind.Batch, foldedBn.Network.Architecture.Normalization);
    }

    public sealed class NumericRow
    {
        public float Label { get; set; }

        [VectorType(784)]
        public float[] Features { get; set; } = [];
    }

    [Fact]
    public void NumericKeyValuesSurviveTrainingScoringAndSaveLoad()
    {
        var ml = new MLContext(seed: 4);
        var rows = Rows(FashionMnistSplit.Train, 300).Select(r => new NumericRow
        {
            Label = 10f + FashionMnist.ClassNames.ToList().IndexOf(r.Label),
            Features = r.Features,
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var validation = ml.Data.LoadFromEnumerable(rows.Take(100).ToList());
        var options = SmallOptions();
        options.Epochs = 2;
        var keyMap = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data);
        options.ValidationData = keyMap.Transform(validation);
        options.EarlyStoppingPatience = 5;
        var estimator = ml.Transforms.BatchNormCnn(options);
        var model = keyMap.Append(estimator.Fit(keyMap.Transform(data)));
        var bn = model.LastTransformer;
        EstimatorWorkout.Run(ml, estimator, bn, keyMap.Transform(data), keyMap.Transform(validation), "Features", "Score", "PredictedLabel");
        Assert.Equal(2, bn.TrainingHistory!.Epochs.Count);
        Assert.All(bn.TrainingHistory.Epochs, e => Assert.NotNull(e.ValidationAccuracy));

        var scored = model.Transform(validation);
        var predicted = scored.Schema["PredictedLabel"];
        Assert.Equal(NumberDataViewType.Single, ((VectorDataViewType)predicted.Annotations.Schema["KeyValues"].Type).ItemType);
        var values = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(scored).Transform(scored).GetColumn<float>("PredictedLabel").ToArray();
        Assert.All(values, v => Assert.InRange(v, 10f, 19f));

        using var dir = new TempDir();
        ml.Model.Save(model, data.Schema, dir.File("numeric.zip"));
        var loaded = new MLContext(seed: 8).Model.Load(dir.File("numeric.zip"), out _);
        var loadedScored = loaded.Transform(validation);
        var back = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(loadedScored).Transform(loadedScored).GetColumn<float>("PredictedLabel").ToArray();
        Assert.Equal(values, back);
        Assert.Equal(bn.ClassNames, BnTransformer(loaded).ClassNames);
    }

    /// <summary>An IProgress that reports synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
