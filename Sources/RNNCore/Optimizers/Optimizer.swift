import CRNNCore

/// Updates parameters from their gradients.
public protocol Optimizer: AnyObject {
    /// The learning rate; trainers change it for decay schedules.
    var learningRate: Float { get set }
    /// Applies one update to every parameter from its current gradient multiplied by `gradientScale` (how
    /// global-norm clipping is applied: ``clippingScale(norm:maxNorm:)``). SGD folds the factor into its rate and
    /// leaves the gradients as they are; Adam, not linear in the gradient, scales them in place first.
    func step(_ parameters: [Parameter], gradientScale: Float) throws(RNNCoreError)
}

extension Optimizer {
    /// Applies one update to every parameter from its current gradient.
    public func step(_ parameters: [Parameter]) throws(RNNCoreError) {
        try step(parameters, gradientScale: 1)
    }
}

/// Plain stochastic gradient descent: `p -= lr · g`.
public final class SGD: Optimizer {
    /// The learning rate.
    public var learningRate: Float

    /// Creates the optimizer.
    public init(learningRate: Float) { self.learningRate = learningRate }

    /// Applies `p -= lr · scale · g` to every parameter: the scale folds into the rate, so clipping costs no pass.
    public func step(_ parameters: [Parameter], gradientScale: Float) throws(RNNCoreError) {
        let rate = learningRate * gradientScale
        for p in parameters {
            try check(rnncore_sgd_step(p.value.writePointer(), p.gradient.readPointer, Int64(p.value.count), rate),
                      "sgd step (\(p.name))")
        }
    }
}

/// Adam with bias correction (Kingma & Ba, 2015), optionally with decoupled weight decay.
public final class Adam: Optimizer {
    /// The learning rate.
    public var learningRate: Float
    /// Exponential decay of the first moment.
    public let beta1: Float
    /// Exponential decay of the second moment.
    public let beta2: Float
    /// Added to the denominator for stability.
    public let epsilon: Float
    /// Decoupled weight decay (AdamW); 0 for plain Adam.
    public let weightDecay: Float
    /// The number of steps taken so far.
    public private(set) var stepCount: Int64 = 0

    /// First and second moments, per parameter name.
    public private(set) var moments: [String: (m: Tensor, v: Tensor)] = [:]

    private var validated: [Parameter] = []

    /// Creates the optimizer; the defaults are those of ``OptimizerSettings`` (learning rate
    /// ``OptimizerSettings/defaultLearningRate(for:)``, β₁ 0.9, β₂ 0.999, ε 1e-8, no weight decay).
    public init(learningRate: Float = OptimizerSettings.defaultLearningRate(for: .adam),
                beta1: Float = OptimizerSettings().beta1, beta2: Float = OptimizerSettings().beta2,
                epsilon: Float = OptimizerSettings().epsilon, weightDecay: Float = OptimizerSettings().weightDecay) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// Applies one bias-corrected Adam step to every parameter.
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` when two parameters share a name (their moments are kept by
    ///   name), or the kernel's error for invalid hyper-parameters; the step count advances only on success.
    public func step(_ parameters: [Parameter], gradientScale: Float) throws(RNNCoreError) {
        guard gradientScale.isFinite, gradientScale >= 0 else {
            throw .invalidArgument("gradient scale must be finite and non-negative, got \(gradientScale)")
        }
        // Validate a parameter list once; later steps over the same parameters skip it (and allocate nothing).
        if !(validated.count == parameters.count && zip(validated, parameters).allSatisfy { $0 === $1 }) {
            var seen = Set<String>()
            for p in parameters {
                guard seen.insert(p.name).inserted else {
                    throw .invalidArgument("two parameters are named \(p.name): Adam keeps its moments by name")
                }
                if let state = moments[p.name], state.m.shape != p.shape {
                    throw .shapeMismatch("adam state for \(p.name) has shape \(state.m.shape), parameter \(p.shape)")
                }
            }
            validated = parameters
        }
        let step = stepCount + 1
        var hyper = rnncore_adam_params(lr: learningRate, beta1: beta1, beta2: beta2, eps: epsilon,
                                        weight_decay: weightDecay)
        if gradientScale != 1 {
            // Adam is not linear in the gradient: the scale must be applied to the gradients themselves.
            for p in parameters {
                p.gradient.withUnsafeMutableBufferPointer { g in
                    for i in g.indices { g[i] *= gradientScale }
                }
            }
        }
        for p in parameters {
            var state = moments.removeValue(forKey: p.name) ?? (Tensor(zeros: p.shape), Tensor(zeros: p.shape))
            let status = rnncore_adam_step(p.value.writePointer(), state.m.writePointer(), state.v.writePointer(),
                                           p.gradient.readPointer, Int64(p.value.count), &hyper, step)
            moments[p.name] = state
            try check(status, "adam step (\(p.name))")
        }
        stepCount = step
    }

    /// Restores the moments and step count (from a checkpoint).
    public func restore(stepCount: Int64, moments: [String: (m: Tensor, v: Tensor)]) {
        self.stepCount = stepCount
        self.moments = moments
        validated = []
    }
}

/// The global L2 norm of all gradients together, accumulated in double.
/// - Throws: ``RNNCoreError/kernel(_:operation:)`` with `nonFinite` when the norm is NaN or infinite.
public func gradientNorm(_ parameters: [Parameter]) throws(RNNCoreError) -> Double {
    try clipGradientNorm(parameters, maxNorm: 0)
}

/// The factor that brings gradients of global norm `norm` down to `maxNorm` (1 when they are within it): the
/// `gradientScale` to pass to ``Optimizer/step(_:gradientScale:)`` for global-norm clipping.
public func clippingScale(norm: Double, maxNorm: Double) -> Float {
    maxNorm > 0 && norm > maxNorm ? Float(maxNorm / (norm + 1e-6)) : 1
}

/// Scales all gradients together so that their global L2 norm is at most `maxNorm`, and returns the norm before
/// clipping. A `maxNorm` of 0 or infinity only measures.
/// - Throws: ``RNNCoreError/kernel(_:operation:)`` with `nonFinite` when the norm is NaN or infinite; nothing
///   is scaled then.
@discardableResult
public func clipGradientNorm(_ parameters: [Parameter], maxNorm: Double) throws(RNNCoreError) -> Double {
    guard !parameters.isEmpty else { return 0 }
    var norm = 0.0
    // The pointer and count lists live on the stack: clipping allocates nothing.
    let status = withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>?.self, capacity: parameters.count) { pointers in
        withUnsafeTemporaryAllocation(of: Int64.self, capacity: parameters.count) { counts in
            for (i, p) in parameters.enumerated() {
                pointers[i] = p.gradient.writePointer()
                counts[i] = Int64(p.gradient.count)
            }
            return withExtendedLifetime(parameters) {
                rnncore_clip_grad_norm(&norm, pointers.baseAddress, counts.baseAddress, Int64(parameters.count), maxNorm)
            }
        }
    }
    try check(status, "gradient clipping (norm \(norm))")
    return norm
}
