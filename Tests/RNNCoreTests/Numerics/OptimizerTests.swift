// SGD and Adam over several steps against the double references, and global-norm gradient clipping.
//
// Tolerances (u = 2⁻²⁴ ≈ 6e-8):
// - `parameter`, 1e-6 + 1e-6·|ref|: a step is a handful of float operations per element (≤ 8 for Adam), each
//   rounding by ≤ u relative; five steps add up five such errors on values ≤ 1. Observed: 6e-8, ≤ 4% of it.
// - `moment`, 1e-7 + 1e-6·|ref|: m = β1·m + (1-β1)·g can cancel, leaving an absolute error of ~u·|β1·m| ≤ 6e-8
//   next to a value near 0, hence the absolute part. Observed: 1.8e-8 (m), 2e-10 (v); ≤ 20% of it.
// - `norm`, 1e-12 relative: the norm is accumulated in double from floats. Observed: exact.
// - `clipped`, 1e-9 + 3e-7·|ref|: one float multiplication by a float-rounded rate (≤ 2u relative).
//   Observed: 3.5e-8, ≤ 23% of it.

import RNNCore
import Testing

@Suite("Numerics: optimizers and clipping")
struct NumericOptimizerTests {
    static let parameter = NumericsTolerance(absolute: 1e-6, relative: 1e-6)
    static let moment = NumericsTolerance(absolute: 1e-7, relative: 1e-6)
    static let norm = NumericsTolerance(absolute: 0, relative: 1e-12)
    static let clipped = NumericsTolerance(absolute: 1e-9, relative: 3e-7)

    /// Three parameters of different shapes (a matrix, a vector, a scalar) with values in ±1.
    static func makeParameters(_ data: inout NumericsData) -> [Parameter] {
        [Parameter(name: "w", value: data.tensor([3, 4])), Parameter(name: "b", value: data.tensor([5])),
         Parameter(name: "s", value: data.tensor([1]))]
    }

    /// Fills every gradient with fresh values in ±1 and returns them widened.
    static func fillGradients(_ parameters: [Parameter], _ data: inout NumericsData) -> [[Double]] {
        parameters.map { p in
            p.gradient = data.tensor(p.shape)
            return p.gradient.widenedScalars
        }
    }

    @Test func sgdMatchesTheReferenceOverFiveSteps() throws {
        var data = NumericsData(seed: 31)
        let parameters = Self.makeParameters(&data)
        var reference = parameters.map(\.value.widenedScalars)
        let sgd = SGD(learningRate: 0.1)
        let lr = Double(sgd.learningRate)  // the float the kernel sees
        for step in 1...5 {
            let grads = Self.fillGradients(parameters, &data)
            try sgd.step(parameters)
            for i in parameters.indices {
                NumericsReference.sgdStep(param: &reference[i], grad: grads[i], lr: lr)
                expectApproximatelyEqual(parameters[i].value, reference[i], tolerance: Self.parameter,
                                         "sgd \(parameters[i].name) after step \(step)")
            }
        }
        sgd.learningRate = -1
        expectRNNCoreError(.kernel(.invalidArgument)) { try sgd.step(parameters) }
    }

    /// Clipping through `gradientScale` (norm measured, factor handed to the optimizer) gives the same update as
    /// scaling the gradients first (clipGradientNorm) and stepping: for SGD the factor folds into the rate, for
    /// Adam it is applied to the gradients. Two float roundings differ, hence the `parameter` tolerance.
    @Test(arguments: ["sgd", "adam"])
    func gradientScaleEqualsClippingFirst(kind: String) throws {
        var data = NumericsData(seed: 40)
        let viaScale = Self.makeParameters(&data)
        let viaClip = viaScale.map { Parameter(name: $0.name, value: $0.value) }
        let make: () -> Optimizer = { kind == "sgd" ? SGD(learningRate: 0.5) : Adam(learningRate: 0.01) }
        let (a, b) = (make(), make())
        for _ in 1...3 {
            _ = Self.fillGradients(viaScale, &data)
            for (p, q) in zip(viaClip, viaScale) { p.gradient = q.gradient }
            let norm = try gradientNorm(viaScale)
            let maxNorm = norm / 3  // always clips
            let scale = clippingScale(norm: norm, maxNorm: maxNorm)
            #expect(scale < 1)
            try a.step(viaScale, gradientScale: scale)
            try clipGradientNorm(viaClip, maxNorm: maxNorm)
            try b.step(viaClip)
            for (p, q) in zip(viaScale, viaClip) {
                expectApproximatelyEqual(p.value, q.value.widenedScalars, tolerance: Self.parameter, "\(kind) \(p.name)")
            }
        }
        #expect(clippingScale(norm: 1, maxNorm: 2) == 1)
        #expect(clippingScale(norm: 3, maxNorm: 0) == 1)
    }

    @Test(arguments: [Float(0), 0.01])
    func adamMatchesTheReferenceOverFiveSteps(weightDecay: Float) throws {
        var data = NumericsData(seed: 32)
        let parameters = Self.makeParameters(&data)
        var reference = parameters.map(\.value.widenedScalars)
        var m = parameters.map { [Double](repeating: 0, count: $0.value.count) }
        var v = m
        let adam = Adam(learningRate: 0.01, weightDecay: weightDecay)
        // The reference uses the float hyper-parameters the kernel sees (0.9 is not exact in float).
        let (lr, b1, b2, eps, wd) = (Double(adam.learningRate), Double(adam.beta1), Double(adam.beta2),
                                     Double(adam.epsilon), Double(adam.weightDecay))
        for step in 1...5 {
            let grads = Self.fillGradients(parameters, &data)
            try adam.step(parameters)
            #expect(adam.stepCount == Int64(step))
            for (i, p) in parameters.enumerated() {
                NumericsReference.adamStep(param: &reference[i], m: &m[i], v: &v[i], grad: grads[i], lr: lr,
                                           beta1: b1, beta2: b2, eps: eps, weightDecay: wd, step: step)
                let what = "adam(wd \(weightDecay)) \(p.name) step \(step)"
                expectApproximatelyEqual(p.value, reference[i], tolerance: Self.parameter, what)
                let moments = try #require(adam.moments[p.name])
                expectApproximatelyEqual(moments.m, m[i], tolerance: Self.moment, "\(what) m")
                expectApproximatelyEqual(moments.v, v[i], tolerance: Self.moment, "\(what) v")
            }
        }
    }

    @Test func adamRejectsBadHyperParameters() throws {
        var data = NumericsData(seed: 33)
        let parameters = Self.makeParameters(&data)
        _ = Self.fillGradients(parameters, &data)
        let before = parameters.map(\.value.widenedScalars)
        for adam in [Adam(learningRate: -1), Adam(beta1: 1), Adam(beta2: -0.5), Adam(epsilon: 0), Adam(weightDecay: -1)] {
            expectRNNCoreError(.kernel(.invalidArgument)) { try adam.step(parameters) }
        }
        for (p, values) in zip(parameters, before) {
            expectApproximatelyEqual(p.value, values, tolerance: .exact, "\(p.name) after rejected Adam steps")
        }
    }

    /// A step the kernel rejects updates nothing, so it must not count: the next accepted step is step 1, with
    /// step-1 bias corrections.
    @Test func aRejectedAdamStepDoesNotAdvanceTheStepCount() throws {
        var data = NumericsData(seed: 34)
        let parameters = Self.makeParameters(&data)
        let grads = Self.fillGradients(parameters, &data)
        var reference = parameters.map(\.value.widenedScalars)
        let adam = Adam(learningRate: -1)
        expectRNNCoreError(.kernel(.invalidArgument)) { try adam.step(parameters) }
        adam.learningRate = 0.01
        try adam.step(parameters)
        #expect(adam.stepCount == 1)
        for (i, p) in parameters.enumerated() {
            var (m, v) = ([Double](repeating: 0, count: p.value.count), [Double](repeating: 0, count: p.value.count))
            NumericsReference.adamStep(param: &reference[i], m: &m, v: &v, grad: grads[i], lr: Double(Float(0.01)),
                                       beta1: Double(adam.beta1), beta2: Double(adam.beta2),
                                       eps: Double(adam.epsilon), weightDecay: 0, step: 1)
            expectApproximatelyEqual(p.value, reference[i], tolerance: Self.parameter, "\(p.name) after one accepted step")
        }
    }

    /// Two layers built with the default name have parameters with equal names ("affine.weight"). Adam keeps its
    /// moments by name, so it refuses such a list instead of mixing their moments, and updates nothing.
    @Test func adamRefusesEquallyNamedParameters() throws {
        var data = NumericsData(seed: 38)
        let first = try Affine(weight: data.tensor([2, 3]), bias: nil)
        let second = try Affine(weight: data.tensor([2, 3]), bias: nil)
        let parameters = first.parameters + second.parameters
        #expect(parameters[0].name == parameters[1].name)
        _ = Self.fillGradients(parameters, &data)
        let before = parameters.map(\.value)
        let adam = Adam(learningRate: 0.01)
        #expect(throws: RNNCoreError.invalidArgument("two parameters are named affine.weight: Adam keeps its moments by name")) {
            try adam.step(parameters)
        }
        #expect(parameters.map(\.value) == before)
        #expect(adam.stepCount == 0)
    }

    // MARK: Clipping

    /// `maxNorm` as a multiple of the gradients' norm; 0 and infinity are absolute (they only measure).
    @Test(arguments: [0.1, 0.5, 0.999, 1.001, 2, 0, Double.infinity])
    func clipGradientNormScalesOnlyAboveTheMaximum(factor: Double) throws {
        var data = NumericsData(seed: 35)
        let parameters = Self.makeParameters(&data)
        var grads = Self.fillGradients(parameters, &data)
        let original = grads
        let exactNorm = grads.joined().reduce(0) { $0 + $1 * $1 }.squareRoot()
        let maxNorm = factor == 0 || factor.isInfinite ? factor : factor * exactNorm
        let referenceNorm = NumericsReference.clipGlobalNorm(&grads, maxNorm: maxNorm)

        let norm = try clipGradientNorm(parameters, maxNorm: maxNorm)
        expectApproximatelyEqual(norm, referenceNorm, tolerance: Self.norm, "returned norm (factor \(factor))")
        let scales = factor > 0 && factor < 1
        for (i, p) in parameters.enumerated() {
            if scales {
                expectApproximatelyEqual(p.gradient, grads[i], tolerance: Self.clipped, "clipped \(p.name) (factor \(factor))")
            } else {  // not above the maximum, or only measuring: untouched, bit for bit
                expectApproximatelyEqual(p.gradient, original[i], tolerance: .exact, "unclipped \(p.name) (factor \(factor))")
            }
        }
        if scales {  // the clipped gradients' norm is the maximum, a hair below (the 1e-6 in the denominator)
            let after = try clipGradientNorm(parameters, maxNorm: 0)
            #expect(after <= maxNorm * (1 + 1e-6))
            expectApproximatelyEqual(after, maxNorm, tolerance: NumericsTolerance(absolute: 2e-6, relative: 1e-6),
                                     "norm after clipping (factor \(factor))")
        }
    }

    @Test(arguments: [Float.nan, Float.infinity, -Float.infinity])
    func clipGradientNormRejectsNonFiniteGradientsWithoutScaling(bad: Float) throws {
        var data = NumericsData(seed: 36)
        let parameters = Self.makeParameters(&data)
        _ = Self.fillGradients(parameters, &data)
        for i in 0..<parameters[0].gradient.count { parameters[0].gradient[flat: i] *= 100 }  // far above maxNorm
        parameters[1].gradient[flat: 2] = bad
        let before = parameters.map(\.gradient.widenedScalars)
        expectRNNCoreError(.kernel(.nonFinite)) { _ = try clipGradientNorm(parameters, maxNorm: 1) }
        for (p, values) in zip(parameters, before) {
            expectApproximatelyEqual(p.gradient, values, tolerance: .exact, "\(p.name) after non-finite norm \(bad)")
        }
    }

    @Test func clipGradientNormEdgeCases() throws {
        expectApproximatelyEqual(try clipGradientNorm([], maxNorm: 1), 0, tolerance: .exact, "norm of no parameters")
        var data = NumericsData(seed: 37)
        let parameters = Self.makeParameters(&data)
        _ = Self.fillGradients(parameters, &data)
        expectRNNCoreError(.kernel(.invalidArgument)) { _ = try clipGradientNorm(parameters, maxNorm: .nan) }
        parameters.zeroGradients()
        expectApproximatelyEqual(try clipGradientNorm(parameters, maxNorm: 1), 0, tolerance: .exact, "norm of zeros")
    }
}
